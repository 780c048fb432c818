"""The torch DropMuon optimizer: equals torch.optim.Muon with every layer sampled, freezes layers
bit for bit without computing their gradients, and catches the reference Muon's zero-gradient
'freeze' that still moves a layer."""

import copy
import io

import pytest

torch = pytest.importorskip("torch")

from dropmuon.verification.torchside import DropMuon, dropmuon_training_step, freeze_below, layer_matrix_shape  # noqa: E402

# float32 CPU: both optimizers run the same operations (bf16 Newton–Schulz included), so they agree
# to rounding of float32 updates; the bar is 1e-6.
TORCH_MUON_ATOL = 1e-6


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([
            torch.nn.Linear(8, 16, bias=False), torch.nn.Linear(16, 12, bias=False), torch.nn.Linear(12, 3, bias=False)])

    def forward(self, x):
        for j, layer in enumerate(self.layers):
            x = layer(x)
            if j < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g)


def _snapshot(model, opt):
    return [(p.detach().clone(), opt.state[p]["momentum_buffer"].clone() if p in opt.state else None)
            for p in model.parameters()]


@pytest.mark.parametrize("nesterov", [True, False])
def test_full_sampling_matches_torch_muon(nesterov):
    torch.manual_seed(0)
    a = MLP()
    b = copy.deepcopy(a)
    opt_a = DropMuon(layers=[[m.weight] for m in a.layers], lr=0.05, weight_decay=0.1, momentum=0.9,
                     nesterov=nesterov, ns_coefficients=(3.4445, -4.7750, 2.0315))
    opt_b = torch.optim.Muon(b.parameters(), lr=0.05, weight_decay=0.1, momentum=0.9, nesterov=nesterov)
    x, y = _data()
    loss = torch.nn.functional.cross_entropy
    for _ in range(6):
        dropmuon_training_step(a, opt_a, loss, x, y, start=1)
        opt_b.zero_grad()
        loss(b(x), y).backward()
        opt_b.step()
    diff = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
    assert diff <= TORCH_MUON_ATOL


def test_frozen_layers_untouched_and_no_gradient_computed():
    torch.manual_seed(1)
    model = MLP()
    opt = DropMuon(layers=[[m.weight] for m in model.layers], lr=0.05, weight_decay=0.1)
    x, y = _data(1)
    loss = torch.nn.functional.cross_entropy
    dropmuon_training_step(model, opt, loss, x, y, start=1)  # every layer gets momentum
    before = _snapshot(model, opt)
    seen = []
    # the first layer's output feeds layer 2; with layer 1 frozen no gradient flows into it
    h = model.layers[0].register_forward_hook(lambda m, i, o: seen.append(o.requires_grad))
    dropmuon_training_step(model, opt, loss, x, y, start=3)
    h.remove()
    after = _snapshot(model, opt)
    for j in (0, 1):  # layers 1 and 2: bit for bit, weights and momentum
        assert torch.equal(before[j][0], after[j][0]) and torch.equal(before[j][1], after[j][1])
        assert model.layers[j].weight.grad is None
    assert not torch.equal(before[2][0], after[2][0])
    assert seen == [False]  # autograd recorded nothing below the start layer
    assert all(p.requires_grad for p in model.parameters())  # restored


def _reference_muon_step(params, bufs, lr=0.05, wd=0.1, mu=0.95):
    """The widely copied reference Muon loop: a missing gradient becomes zeros."""
    for p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        buf = bufs.setdefault(p, torch.zeros_like(p))
        buf.mul_(mu).add_(g)
        p.data.mul_(1 - lr * wd)
        p.data.add_(buf, alpha=-lr)


def test_zero_gradient_freeze_is_caught():
    """The reference behaviour (zeros for missing gradients) still moves a 'frozen' layer through
    momentum and weight decay; the invariant DropMuon's tests use detects it."""
    torch.manual_seed(2)
    model = MLP()
    bufs = {}
    x, y = _data(2)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    _reference_muon_step(list(model.parameters()), bufs)
    frozen = model.layers[0].weight
    before = frozen.detach().clone()
    for p in model.parameters():
        p.grad = None
    model.layers[0].weight.requires_grad_(False)  # 'freeze' layer 1 for this step
    torch.nn.functional.cross_entropy(model(x), y).backward()
    _reference_muon_step(list(model.parameters()), bufs)
    assert frozen.grad is None
    assert not torch.equal(before, frozen.detach())  # the 'frozen' layer moved: caught
    # DropMuon on the same situation leaves it alone
    model2 = MLP()
    opt = DropMuon(layers=[[m.weight] for m in model2.layers], lr=0.05, weight_decay=0.1)
    dropmuon_training_step(model2, opt, torch.nn.functional.cross_entropy, x, y, start=1)
    w = model2.layers[0].weight.detach().clone()
    dropmuon_training_step(model2, opt, torch.nn.functional.cross_entropy, x, y, start=2)
    assert torch.equal(w, model2.layers[0].weight.detach())


def test_conv_flattening_and_lr_scaling():
    assert layer_matrix_shape((64, 1, 3, 3)) == (64, 9)
    torch.manual_seed(3)
    conv = torch.nn.Parameter(torch.randn(16, 2, 3, 3))
    flat = torch.nn.Parameter(conv.detach().reshape(16, 18).clone())
    opt_c = DropMuon([conv], lr=0.1, momentum=0.0, ns_dtype=torch.float32)
    opt_f = DropMuon([flat], lr=0.1, momentum=0.0, ns_dtype=torch.float32)
    g = torch.randn(16, 2, 3, 3)
    conv.grad, flat.grad = g.clone(), g.reshape(16, 18).clone()
    opt_c.step()
    opt_f.step()
    assert torch.equal(conv.detach().reshape(16, 18), flat.detach())
    # exact sharp operator: the step is lr·sqrt(max(1, m/n))·U Vᵀ of the flattened 16 × 18 matrix
    p = torch.nn.Parameter(torch.zeros(18, 4))
    opt = DropMuon([p], lr=0.1, momentum=0.0, sharp="svd")
    p.grad = torch.randn(18, 4)
    U, _, Vh = torch.linalg.svd(p.grad.double(), full_matrices=False)
    opt.step()
    expected = -(0.1 * (18 / 4) ** 0.5) * (U @ Vh)
    assert torch.allclose(p.detach().double(), expected, atol=1e-6)


def test_state_dict_round_trip():
    torch.manual_seed(4)
    model = MLP()
    opt = DropMuon(layers=[[m.weight] for m in model.layers], lr=0.05)
    x, y = _data(4)
    dropmuon_training_step(model, opt, torch.nn.functional.cross_entropy, x, y, start=2)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    model2 = copy.deepcopy(model)
    opt2 = DropMuon(layers=[[m.weight] for m in model2.layers], lr=0.05)
    opt2.load_state_dict(torch.load(buf))
    assert [g["layer"] for g in opt2.param_groups] == [1, 2, 3]
    for m1, m2 in ((model, model2),):
        dropmuon_training_step(m1, opt, torch.nn.functional.cross_entropy, x, y, start=1)
        dropmuon_training_step(m2, opt2, torch.nn.functional.cross_entropy, x, y, start=1)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), model2.parameters()))


_NO_DYNAMO_SCRIPT = """
import sys, torch
from dropmuon.verification.torchside import DropMuon, dropmuon_training_step
torch.manual_seed(0)
lin = [torch.nn.Linear(6, 5, bias=False), torch.nn.Linear(5, 3, bias=False)]
model = torch.nn.Sequential(lin[0], torch.nn.Tanh(), lin[1])
opt = DropMuon(layers=[[m.weight] for m in lin], lr=0.05, ns_dtype=torch.float32)
x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
dropmuon_training_step(model, opt, torch.nn.functional.cross_entropy, x, y, start=1)
opt.load_state_dict(opt.state_dict())
opt.zero_grad(set_to_none=True)
print(int("torch._dynamo" in sys.modules))
"""


def test_an_optimizer_does_not_import_the_compiler():
    """torch's ``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` import
    ``torch._dynamo`` (~3 s) on first use; DropMuon calls them undecorated while nothing has
    imported it (nothing can then be tracing), and torch's wrappers once something has."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _NO_DYNAMO_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
    # here torch._dynamo is imported (torch.compile below, if no earlier test did): torch's own
    # wrappers run, with the same result as the undecorated methods
    import torch._dynamo  # noqa: F401

    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        assert getattr(DropMuon, name).__wrapped__ is getattr(torch.optim.Optimizer, name).__wrapped__
    test_state_dict_round_trip()


def test_bad_input():
    p = torch.nn.Parameter(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="lr = -1"):
        DropMuon([p], lr=-1)
    with pytest.raises(ValueError, match="momentum = 1.0"):
        DropMuon([p], momentum=1.0)
    with pytest.raises(ValueError, match="unknown Newton-Schulz preset 'fast'"):
        DropMuon([p], ns_coefficients="fast")
    opt = DropMuon(layers=[[p]])
    with pytest.raises(ValueError, match="start = 2"):
        with freeze_below(opt, 2):
            pass
    with pytest.raises(ValueError, match="no 'layer' key"):
        with freeze_below(DropMuon([p]), 1):
            pass


def _biased_mlp(dtype=torch.float64):
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 12), torch.nn.Tanh(),
                              torch.nn.Linear(12, 3))
    return net.to(dtype)


def test_inverse_inclusion_rule_moves_each_layer_by_lr_over_pi():
    """Under radius_rule="inverse-inclusion" a sampled layer's Muon step is Muon's step at lr/π_i:
    bit for bit the common rule's step with that lr (the same operations on the same numbers), and
    so 1/π_i times the common-lr step up to the rounding of the final update. The AdamW companion
    (the biases) is untouched by the rule; π ≡ 1 gives the common rule's update bit for bit."""
    from dropmuon.verification.torchside import layers_step

    x, y = _data(6)
    x = x.double()
    pi = (0.25, 0.5, 1.0)
    kw = dict(weight_decay=0.1, momentum=0.9, ns_dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy
    base = _biased_mlp()
    nets = {name: copy.deepcopy(base) for name in ("common", "rule", "lr1", "lr2", "lr3")}
    opts = {"common": DropMuon.from_model(nets["common"], x[:2], lr=0.05, **kw),
            "rule": DropMuon.from_model(nets["rule"], x[:2], lr=0.05, radius_rule="inverse-inclusion",
                                        inclusion=(1.0, 1.0, 1.0), **kw)}
    for j in (1, 2, 3):  # the references: the common rule at layer j's lr/π_j
        opts[f"lr{j}"] = DropMuon.from_model(nets[f"lr{j}"], x[:2], lr=0.05 / pi[j - 1], **kw)
    # a first step with π ≡ 1: the rule is the common rule, bit for bit (weights and momentum)
    for name in ("common", "rule"):
        layers_step(nets[name], opts[name], loss, x, y, (1, 2, 3))
    assert all(torch.equal(p, q) for p, q in zip(nets["common"].parameters(), nets["rule"].parameters()))
    # from that common state (momentum formed), one step with π = (1/4, 1/2, 1)
    for name in ("lr1", "lr2", "lr3"):
        nets[name].load_state_dict(nets["common"].state_dict())
        opts[name].load_state_dict(copy.deepcopy(opts["common"].state_dict()))  # shares no buffer with it
        for g in opts[name].param_groups:
            if g["algorithm"] == "muon":
                g["lr"] = 0.05 / pi[int(name[-1]) - 1]  # load_state_dict restored the common lr
    before = [p.detach().clone() for p in nets["common"].parameters()]
    opts["rule"].set_inclusion(pi)
    for name, net in nets.items():
        layers_step(net, opts[name], loss, x, y, (1, 2, 3))
    weights = {name: [nets[name][k].weight for k in (0, 2, 4)] for name in nets}
    biases = {name: [nets[name][k].bias for k in (0, 2, 4)] for name in nets}
    for j in range(3):
        assert torch.equal(weights["rule"][j], weights[f"lr{j + 1}"][j])  # Muon at lr/π_j, bit for bit
        moved_rule = weights["rule"][j] - before[2 * j]
        moved_common = weights["common"][j] - before[2 * j]
        # 1/π_j times the common step: W − lr(wd·W + s·O) rounds twice per entry in float64, so
        # each displacement is exact to a few ulp of |W| (≤ 0.5 here); dividing by π_j ≥ 1/4 scales
        # the common one's error by ≤ 4: 16 ulp of max|W| covers both
        atol = 16 * torch.finfo(torch.float64).eps * float(before[2 * j].abs().max())
        torch.testing.assert_close(moved_rule, moved_common / pi[j], rtol=0, atol=atol)
        assert moved_common.abs().max() > 1e3 * atol  # the steps are far larger than that tolerance
        assert torch.equal(biases["rule"][j], biases["common"][j])  # AdamW: the rule changes nothing
    # ... and the AdamW moments agree too
    for p, q in zip(nets["rule"].parameters(), nets["common"].parameters()):
        if p.ndim == 1:
            assert torch.equal(opts["rule"].state[p]["exp_avg_sq"], opts["common"].state[q]["exp_avg_sq"])
    # a layer outside the set stays frozen under the rule too
    w1 = weights["rule"][0].detach().clone()
    layers_step(nets["rule"], opts["rule"], loss, x, y, (2, 3))
    assert torch.equal(w1, nets["rule"][0].weight)


def test_radius_rule_bad_input():
    net = _biased_mlp(torch.float32)
    x = torch.zeros(2, 8)
    with pytest.raises(ValueError, match="radius_rule = 'theory'"):
        DropMuon.from_model(net, x, radius_rule="theory")
    opt = DropMuon.from_model(net, x, radius_rule="inverse-inclusion", weight_decay=0.1)
    with pytest.raises(ValueError, match="inclusion has 2 entries but the optimizer has 3 layers"):
        opt.set_inclusion([0.5, 1.0])
    with pytest.raises(ValueError, match=r"got inclusion\[2\] = 1.5"):
        opt.set_inclusion([0.5, 1.5, 1.0])
    with pytest.raises(ValueError, match="no 'layer' key"):
        DropMuon([torch.nn.Parameter(torch.zeros(3, 3))], radius_rule="inverse-inclusion").set_inclusion([1.0])
    loss = torch.nn.functional.cross_entropy
    y = torch.zeros(2, dtype=torch.long)
    from dropmuon.verification.torchside import layers_step

    with pytest.raises(ValueError, match="layer 1 has none"):
        layers_step(net, opt, loss, x, y, (1, 2, 3))
    opt.set_inclusion([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="layer 1 has inclusion probability 0 but was updated"):
        layers_step(net, opt, loss, x, y, (1, 2, 3))
    layers_step(net, opt, loss, x, y, (2, 3))  # a layer with π = 0 that is not sampled is fine
    opt.set_inclusion([0.01, 1.0, 1.0])  # lr/π · wd = 0.02/0.01 · 0.1 = 0.2: fine; at lr 1 it is 10
    layers_step(net, opt, loss, x, y, (1, 2, 3))
    for g in opt.param_groups:
        g["lr"] = 1.0
    with pytest.raises(ValueError, match="layer 1 lr/pi \\* weight_decay = 10 > 1"):
        layers_step(net, opt, loss, x, y, (1, 2, 3))
