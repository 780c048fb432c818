"""Bringing one's own model through the public API only: a user-defined residual network with
BatchNorm and biases is layered from a forward trace, trained with Drop-Muon and measured; the
truncation is verified by counting the backward kernels autograd runs per start index; and every
way the first version went silently wrong is now a clear error or the right behaviour."""

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from dropmuon.figures.cli import main  # noqa: E402
from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.torchside import (  # noqa: E402
    Dataset, DropMuon, dropmuon_training_step, evaluate, layer_sets, measure_costs, measure_network,
    model_layers, objective_for, train,
)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResNet(nn.Module):
    """A user's residual CNN: a stem with a bias, two residual blocks with BatchNorm, a head with
    a bias — 6 matrices, 10 vectors."""

    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.blocks = nn.Sequential(Block(c), Block(c))
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        return self.head(self.blocks(torch.relu(self.stem(x))).mean(dim=(2, 3)))



def _resnet(seed=0):
    torch.manual_seed(seed)
    return ResNet()


def _backward_kernels(model, opt, x, y, start) -> int:
    """Autograd nodes run by one Drop-Muon step starting at ``start`` (profiler events named
    ``…Backward0``/``…Backward1``: one per node of the backward graph)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        dropmuon_training_step(model, opt, nn.functional.cross_entropy, x, y, start)
    return sum(1 for e in prof.events() if "Backward" in e.name and e.name[-1].isdigit())


def test_layers_from_the_trace_group_biases_and_norms_with_their_matrix(digits):
    m = _resnet()
    opt = DropMuon.from_model(m, digits.x_train[:4], lr=0.05)
    ml = opt.model_layers
    assert ml.labels == ("stem", "blocks.0.conv1", "blocks.0.conv2", "blocks.1.conv1", "blocks.1.conv2", "head")
    assert ml.names[0] == ("stem.weight", "stem.bias")
    assert ml.names[1] == ("blocks.0.conv1.weight", "blocks.0.bn1.weight", "blocks.0.bn1.bias")
    assert ml.names[5] == ("head.weight", "head.bias")
    # every trainable parameter in exactly one layer; matrices on Muon, vectors on the AdamW companion
    names = [n for ns in ml.names for n in ns]
    assert sorted(names) == sorted(n for n, _ in m.named_parameters())
    for g in opt.param_groups:
        assert all((p.ndim >= 2) == (g["algorithm"] == "muon") for p in g["params"])
    # the trace leaves BatchNorm's running statistics as they were
    assert torch.equal(m.blocks[0].bn1.running_mean, torch.zeros(8))


def test_truncation_counted_in_backward_kernels(digits):
    m = _resnet()
    opt = DropMuon.from_model(m, digits.x_train[:4], lr=0.05)
    x, y = digits.x_train[:32], digits.y_train[:32]
    counts = [_backward_kernels(m, opt, x, y, s) for s in range(1, 7)]
    # each start higher drops the backward kernels of at least one convolution (or more)
    assert all(a > b for a, b in zip(counts, counts[1:])), counts
    # the last start runs exactly the head's backward: what a model with only the head trainable runs
    ref = _resnet()
    for n, p in ref.named_parameters():
        p.requires_grad_(n.startswith("head"))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        nn.functional.cross_entropy(ref(x), y).backward()
    head_only = sum(1 for e in prof.events() if "Backward" in e.name and e.name[-1].isdigit())
    assert counts[-1] == head_only, (counts, head_only)
    # the first version left biases and norms trainable: backward then ran through every block
    m2 = _resnet()
    raw = DropMuon(layers=[[p for p in mod.parameters() if p.ndim >= 2] for mod in
                           (m2.stem, m2.blocks[0].conv1, m2.blocks[0].conv2, m2.blocks[1].conv1, m2.blocks[1].conv2,
                            m2.head)], lr=0.05)
    leaky = _backward_kernels(m2, raw, x, y, 6)
    assert leaky > counts[1], (leaky, counts)  # more than a step starting at layer 2: no truncation at all
    # ... and such an optimizer is now refused before training, naming a parameter it leaves out
    with pytest.raises(ValueError, match=r"parameter 'stem.bias' is in no layer group"):
        train(m2, raw, digits, RPT.uniform(6), max_steps=1)


def test_frozen_layers_biases_norms_and_companion_state_untouched(digits):
    m = _resnet()
    opt = DropMuon.from_model(m, digits.x_train[:4], lr=0.05, adamw_lr=0.01)
    x, y = digits.x_train[:32], digits.y_train[:32]
    dropmuon_training_step(m, opt, nn.functional.cross_entropy, x, y, 1)  # every layer gets state
    params = [p for g in opt.param_groups for p in g["params"]]
    before = {id(p): p.detach().clone() for p in params}
    state = {id(p): {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[p].items()} for p in params}
    dropmuon_training_step(m, opt, nn.functional.cross_entropy, x, y, 4)
    for j, gs in opt.layer_groups().items():
        for g in gs:
            for p in g["params"]:
                if j < 4:
                    assert p.grad is None  # never computed, not merely zeroed
                    assert torch.equal(p, before[id(p)])
                    for k, v in state[id(p)].items():
                        assert (torch.equal(opt.state[p][k], v) if torch.is_tensor(v) else opt.state[p][k] == v), k
                else:
                    assert p.grad is not None and not torch.equal(p, before[id(p)])
    # the companion's step counts record only the steps its layer took
    assert opt.state[m.stem.bias]["step"] == 1 and opt.state[m.head.bias]["step"] == 2


def test_adamw_companion_is_torch_adamw():
    torch.manual_seed(0)
    a, b = nn.Parameter(torch.randn(7)), None
    b = nn.Parameter(a.detach().clone())
    w = nn.Parameter(torch.randn(3, 7))
    ours = DropMuon([{"params": [w], "layer": 1}, {"params": [a], "layer": 1, "algorithm": "adamw"}],
                    adamw_lr=0.03, adamw_betas=(0.8, 0.9), adamw_eps=1e-6, adamw_weight_decay=0.1)
    ref = torch.optim.AdamW([b], lr=0.03, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, foreach=False)
    for k in range(5):
        g = torch.randn(7, generator=torch.Generator().manual_seed(k))
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    # the same float32 operations up to the order of the bias corrections: a few ulps per step
    assert torch.allclose(a, b, rtol=0, atol=1e-6), (a - b).abs().max()


def test_input_first_order_is_enforced_and_a_reversed_order_saves_nothing(digits):
    m = _resnet()
    mods = [m.stem, m.blocks[0], m.blocks[1], m.head]
    with pytest.raises(ValueError, match=r"not input-first: group 2 \(blocks.1\) runs before group 1 \(head\)"):
        DropMuon.from_model(m, digits.x_train[:4], groups=mods[::-1])
    ok = DropMuon.from_model(m, digits.x_train[:4], groups=mods)
    assert ok.model_layers.labels == ("stem", "blocks.0", "blocks.1", "head")
    # measured: with the output-first order "start at the last layer" freezes the head and the
    # blocks but still back-propagates through all of them to reach the stem — 40 of the 42
    # backward kernels of a full step (only the frozen head's weight-gradient nodes are skipped),
    # against 8 for the head alone in the right order
    x, y = digits.x_train[:32], digits.y_train[:32]
    rev = DropMuon(layers=[list(mod.parameters()) for mod in mods[::-1]], lr=0.05)
    saved_nothing = _backward_kernels(m, rev, x, y, 4)
    right = [_backward_kernels(m, ok, x, y, s) for s in (1, 4)]
    assert saved_nothing >= right[0] - 4 and right[1] < right[0] / 3, (saved_nothing, right)
    with pytest.raises(ValueError, match="not input-first"):
        train(m, rev, digits, RPT.uniform(4), max_steps=1)


def test_orphans_ties_and_models_without_matrices_are_named():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.extra = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ValueError, match="parameter 'extra' is trainable but the forward pass never used it"):
        model_layers(Unused(), torch.zeros(2, 4))
    u = Unused()
    with pytest.raises(ValueError, match="parameter 'extra' is in no layer group"):
        model_layers(u, torch.zeros(2, 4), groups=[u.fc])
    with pytest.raises(ValueError, match="parameter 'fc.weight' is in layer groups 1 and 2"):
        model_layers(u, torch.zeros(2, 4), groups=[u.fc, [u.fc.weight, u.extra]])

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.mid = nn.Linear(4, 4)
            self.out = nn.Linear(4, 10, bias=False)
            self.out.weight = self.emb.weight

        def forward(self, x):
            return self.out(self.mid(self.emb(x)))

    t = Tied()
    with pytest.raises(ValueError, match="'emb.weight' is tied to 'out.weight'"):
        DropMuon.from_model(t, torch.zeros(2, 3, dtype=torch.long))
    # the documented rule: a tied weight's modules share one layer
    opt = DropMuon.from_model(t, torch.zeros(2, 3, dtype=torch.long), groups=[[t.emb.weight, *t.mid.parameters()]])
    assert len(opt.model_layers) == 1
    with pytest.raises(ValueError, match="no matrix parameters"):
        model_layers(nn.Sequential(nn.LayerNorm(4)), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"the model failed on an example batch of shape \(2, 5\): mat1 and mat2"):
        model_layers(nn.Linear(4, 2), torch.zeros(2, 5))


def test_training_evaluates_in_eval_mode_and_restores_training_mode(digits):
    m = _resnet()
    opt = DropMuon.from_model(m, digits.x_train[:4], lr=0.05)
    r = train(m, opt, digits, RPT.uniform(6), max_steps=12, batch=64, eval_every=6, seed=1)
    assert m.training  # restored after every evaluation
    obj = objective_for("classification")
    stats = m.blocks[0].bn1.running_var.clone()
    acc, loss = evaluate(m, digits.x_train, digits.y_train, obj)
    assert torch.equal(m.blocks[0].bn1.running_var, stats)  # evaluation does not touch running statistics
    assert (acc, loss) == (r.final_train_acc, r.final_train_loss)
    m.eval()
    with torch.no_grad():
        out = m(digits.x_train)
    m.train()
    assert acc == pytest.approx(float((out.argmax(1) == digits.y_train).double().mean()), abs=1e-12)
    with torch.no_grad():
        train_mode_loss = float(nn.functional.cross_entropy(m(digits.x_train), digits.y_train))
    assert abs(train_mode_loss - loss) > 1e-4  # batch statistics differ from running ones: modes differ


def _regression_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    y = torch.sin(x[:, :2].sum(1)) + 0.1 * x[:, 2]
    return Dataset(x[:240], y[:240], x[240:], y[240:], "toy-regression", task="regression")


def test_regression_trains_and_measures_with_its_own_loss():
    data = _regression_data()
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1), nn.Flatten(0))
    opt = DropMuon.from_model(m, data.x_train[:4], lr=0.02)
    r = train(m, opt, data, RPT.uniform(3), max_steps=60, batch=64, eval_every=20, target_acc=-0.05, seed=0)
    assert r.info["metric"] == "negative MSE" and r.history[-1]["train_acc"] == -r.history[-1]["train_loss"]
    assert r.final_train_loss < 0.5 * r.history[0]["train_loss"]
    cal = measure_network(m, opt, data, batch=64, steps=3, repeats=3)
    assert len(cal["layers"]) == 3 and all(rec["L"] > 0 for rec in cal["layers"])
    with pytest.raises(ValueError, match=r"the loss must return a scalar; got a tensor of shape \(240,\)"):
        train(m, opt, data, RPT.full(3), max_steps=1, batch=64,
              loss_fn=lambda out, y: nn.functional.mse_loss(out, y, reduction="none"))


def test_cost_measurement_beyond_six_layers():
    torch.manual_seed(0)
    m = nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.ReLU()) for _ in range(7)], nn.Linear(16, 3))
    opt = DropMuon.from_model(m, torch.zeros(2, 16), lr=0.01)
    assert len(opt.model_layers) == 8
    sets = layer_sets(8)
    assert all(tuple(range(s, 9)) in sets for s in range(1, 9)) and len(set(sets)) == len(sets) == 32
    x, y = torch.randn(64, 16), torch.randint(0, 3, (64,))
    c = measure_costs(m, opt, nn.functional.cross_entropy, x, y, repeats=3, warmup=0)
    assert c.sets == tuple(sets) and c.nlayers == 8 and c.start_measured.shape == (8,)
    assert np.all(np.isfinite(c.start_predicted))
    # out of sample: fitted on the 16 core sets (empty, RPT starts, singletons), checked on the 16 others
    core = set(layer_sets(8, "suffixes"))
    assert len(core) == 16 and len(c.holdout_sets) == 16 and not core & set(c.holdout_sets)
    assert c.holdout_relative_error.shape == (16,) and np.all(np.isfinite(c.holdout_relative_error))
    assert c.as_dict()["out_of_sample"]["max"] == pytest.approx(float(c.holdout_relative_error.max()), rel=0)


USER_MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Linear(8, 10)

        def forward(self, x):
            h = torch.relu(self.bn(self.stem(x)))
            return self.head(torch.relu(h + self.conv(h)).mean(dim=(2, 3)))


    def make(data):
        return Net()


    def with_loss(data):
        return Net(), nn.functional.cross_entropy


    def no_matrix(data):
        return nn.Sequential(nn.Flatten(), nn.LayerNorm(64))


    def vector_loss(data):
        return Net(), lambda out, y: nn.functional.cross_entropy(out, y, reduction="none")


    def needs_28(data):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_models_for_dropmuon.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models_for_dropmuon"


def test_cli_experiment_with_a_model_defined_outside_the_package(capsys, tmp_path, user_module):
    import json

    argv = ["experiment", "--model", f"{user_module}:with_loss", "--device", "cpu", "--seeds", "2",
            "--samplings", "full,uniform,optimal-max", "--max-steps", "12", "--target-acc", "0.3", "--batch", "64",
            "--eval-every", "4", "--estimate-steps", "3", "--repeats", "3", "--out", str(tmp_path / "exp"),
            "--no-progress", "--json"]
    assert main(argv) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["config"]["model"] == f"{user_module}:with_loss" and s["data"] == "sklearn-digits"
    assert list(s["rows"]) == ["full", "uniform", "optimal-max"]
    cal = json.loads((tmp_path / "exp" / "calibration.json").read_text())
    assert [rec["label"] for rec in cal["layers"]] == ["stem", "conv", "head"]


def test_cli_bad_models_are_one_line_errors(capsys, user_module):
    cases = [
        ("no_such_module_xyz:make", "cannot import the model factory module 'no_such_module_xyz'"),
        (f"{user_module}:nothing", f"module '{user_module}' has no attribute 'nothing'"),
        ("resnet50", "unknown model 'resnet50'"),
        (f"{user_module}:no_matrix", "no matrix parameters"),
        (f"{user_module}:vector_loss", "the loss must return a scalar; got a tensor of shape (4,)"),
        (f"{user_module}:needs_28", "the model failed on an example batch of shape (8, 1, 8, 8)"),
    ]
    for model, msg in cases:
        assert main(["train", "--model", model, "--device", "cpu", "--max-steps", "1", "--no-progress"]) == 2, model
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (model, err)


def _regression_factory(data):
    """A module-level factory (picklable, as the execution layer needs): model and its loss."""
    model = nn.Sequential(nn.Linear(data.input_shape[0], 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))
    return model, nn.functional.mse_loss


def test_run_experiment_with_a_factory_and_a_regression_data_set(tmp_path):
    from dropmuon.verification.torchside import ExperimentConfig, run_experiment

    settings = ExperimentConfig(seeds=(0, 1), samplings=("full", "uniform"), max_steps=40, target_acc=-0.3,
                                batch=32, lr=0.02, eval_every=5, estimate_steps=3, cost_repeats=3,
                                flush_denormals=False)
    res = run_experiment(_regression_factory, _regression_data(), settings=settings, out=tmp_path, progress=False)
    s = res["summary"]
    assert s["config"]["model"].endswith(":_regression_factory") and s["data"] == "toy-regression"
    assert s["metric"] == "negative MSE" and list(s["rows"]) == ["full", "uniform"]
    # the factory's loss trained it: every run's final metric is minus its final loss
    for r in res["runs"]:
        assert r["final_train_acc"] == pytest.approx(-r["final_train_loss"], rel=1e-12)
    assert [rec["label"] for rec in res["calibration"]["layers"]] == ["0", "2"]
    with pytest.raises(ValueError, match=r"the model factory '.*<lambda>' returned a value of type int, not a torch.nn.Module"):
        run_experiment(lambda data: 3, _regression_data(), settings=settings, progress=False)


class Functional(nn.Module):
    """A functional-style model: raw parameters on the top module, used at the input (``w_in``)
    and at the output (``w_out``, ``b_out``), a module between them."""

    def __init__(self):
        super().__init__()
        self.w_in = nn.Parameter(torch.randn(16, 8) / 4)
        self.mid = nn.Linear(16, 16)
        self.w_out = nn.Parameter(torch.randn(3, 16) / 4)
        self.b_out = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        h = torch.relu(self.mid(torch.relu(nn.functional.linear(x, self.w_in))))
        return nn.functional.linear(h, self.w_out, self.b_out)


def test_raw_parameters_of_the_top_module_are_layers_where_they_are_used():
    torch.manual_seed(0)
    m = Functional()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    opt = DropMuon.from_model(m, x[:4], lr=0.05)
    ml = opt.model_layers
    # the first version put w_in, w_out and b_out in one layer 1 ("(model)"): the output matrix was
    # then updated only by steps starting at layer 1
    assert ml.labels == ("w_in", "mid", "w_out")
    assert ml.names == (("w_in",), ("mid.weight", "mid.bias"), ("w_out", "b_out"))
    # the promise: a step starting at the last layer updates the output side, and nothing below
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    dropmuon_training_step(m, opt, nn.functional.cross_entropy, x, y, 3)
    moved = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"w_out", "b_out"}


def test_a_module_whose_parameters_are_used_apart_is_split_and_a_fused_call_is_not():
    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.w_in = nn.Parameter(torch.randn(16, 8))
            self.inner = nn.Linear(16, 16)
            self.w_out = nn.Parameter(torch.randn(4, 16))

        def forward(self, x):  # w.T is a use of w (the first version's trace missed it: "never used")
            return self.inner(x @ self.w_in.T) @ self.w_out.T

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = Body()

        def forward(self, x):
            return self.body(x)

    ml = model_layers(Wrapped(), torch.zeros(2, 8))
    # body's own matrices are used before and after body.inner: the one used last is a layer of its own
    assert ml.labels == ("body", "body.inner", "body.w_out")
    assert ml.names == (("body.w_in",), ("body.inner.weight", "body.inner.bias"), ("body.w_out",))

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(4, 8, num_layers=2, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.gru(x)[0][:, -1])

    r = Recurrent()
    ml = model_layers(r, torch.zeros(2, 5, 4))
    # one fused call takes all of the GRU's weights and biases: one layer, then the head
    assert ml.labels == ("gru", "head")
    assert sorted(ml.names[0]) == sorted(n for n, _ in r.named_parameters() if n.startswith("gru."))


class TinyViT(nn.Module):
    """Patches by a convolution, a learned position embedding 1 × 16 × 32 added by hand, a
    weight-normed linear map and a linear head with one output."""

    def __init__(self):
        super().__init__()
        from torch.nn.utils.parametrizations import weight_norm

        self.patch = nn.Conv2d(1, 32, 2, stride=2)
        self.pos = nn.Parameter(torch.randn(1, 16, 32) / 10)
        self.fc = weight_norm(nn.Linear(32, 32))
        self.mix = nn.Linear(32, 32)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        h = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.mix(torch.relu(self.fc(h))).mean(1)).squeeze(1)


def test_parameters_that_are_no_matrices_for_muon_go_to_adamw_and_the_table_says_why(capsys):
    from dropmuon.figures.cli._torch import print_layer_table

    torch.manual_seed(0)
    m = TinyViT()
    opt = DropMuon.from_model(m, torch.zeros(2, 1, 8, 8), lr=0.05)
    ml = opt.model_layers
    route = {n: (a, why) for ns, algs, whys in zip(ml.names, ml.algorithms, ml.reasons)
             for n, a, why in zip(ns, algs, whys)}
    group_of = {id(p): g["algorithm"] for g in opt.param_groups for p in g["params"]}
    named = dict(m.named_parameters())
    assert all(group_of[id(named[n])] == a for n, (a, _) in route.items())  # the param groups follow the table
    # the first version gave the 1×16×32 position embedding to Muon as a 1×512 matrix: a normalised-gradient step
    assert route["pos"] == ("adamw",
                            "a 3-D tensor 1×16×32 that is not a convolution kernel (torch.optim.Muon refuses it)")
    # a convolution kernel C_out × C_in × k × k is Muon's matrix C_out × (C_in k k)
    assert route["patch.weight"] == ("muon", "a convolution kernel 32×1×2×2 as the matrix 32×4")
    # weight norm: the magnitude g (32 × 1) to AdamW, the direction v (the weight's shape) to Muon
    g, v = "fc.parametrizations.weight.original0", "fc.parametrizations.weight.original1"
    assert route[g][0] == "adamw" and route[g][1].startswith("weight norm's magnitude g of weight, shape (32, 1)")
    assert route[v] == ("muon", "a 32×32 matrix")
    # a matrix with a dimension 1 (the one-output head) to AdamW
    assert route["head.weight"][0] == "adamw" and "matrix view 1×32 has a dimension 1" in route["head.weight"][1]
    assert route["mix.weight"][0] == "muon" and route["head.bias"][0] == "adamw"
    # weight norm's tensors belong to the module that uses them; the position embedding, a raw
    # parameter of the top module, is a layer of its own where it is used
    assert ml.labels == ("patch", "pos", "fc", "mix", "head")
    assert set(ml.names[2]) == {g, v, "fc.bias"}
    # a step: the position embedding gets AdamW's moments, no Muon momentum
    dropmuon_training_step(m, opt, lambda out, y: ((out - y) ** 2).mean(), torch.randn(8, 1, 8, 8), torch.randn(8), 1)
    assert set(opt.state[m.pos]) == {"step", "exp_avg", "exp_avg_sq"}
    assert set(opt.state[m.mix.weight]) == {"momentum_buffer"}
    # the table, as data and printed
    lay = ml.as_dict()["layers"][1]
    assert lay["parameters"] == ["pos"] and lay["algorithms"] == ["adamw"]
    assert "not a convolution kernel" in lay["reasons"][0]
    print_layer_table(ml)
    out = capsys.readouterr().out
    assert "patch.weight 32×1×2×2 as 32×4" in out and "pos 1×16×32*" in out
    assert "  * AdamW, not Muon: pos: a 3-D tensor 1×16×32 that is not a convolution kernel" in out
    assert "  * AdamW, not Muon: head.weight: its matrix view 1×32 has a dimension 1" in out
    # without modules (layers=[...]) the shape rule still holds for matrices with a dimension 1
    bare = DropMuon(layers=[[m.mix.weight, m.head.weight]], lr=0.05)
    assert [(g["algorithm"], [tuple(p.shape) for p in g["params"]]) for g in bare.param_groups] == [
        ("muon", [(32, 32)]), ("adamw", [(1, 32)])]
