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
