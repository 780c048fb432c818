"""Options and set-up shared by the torch subcommands (``estimate``, ``train``, ``experiment``)."""

from __future__ import annotations

import functools
from contextlib import contextmanager

from ._common import CLIError, EnvironmentFailure, parse_number

__all__ = ["add_common", "add_compile", "add_radius_rule", "radius_rule_of", "device", "torch_session", "torch_command", "parse_common", "progress_flag", "load_model",
           "print_layer_table"]


def add_common(p):
    """Options shared by the torch subcommands."""
    p.add_argument("--model", default="cnn",
                   help="cnn | resnet | transformer (built-in) or PACKAGE.MODULE:FACTORY, a function of yours called "
                        "with the data set that returns the model, or (model, loss[, metric]) (default cnn)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seed", default="0", help="seed of data split, initialisation and batches (default 0)")
    p.add_argument("--data", default=None,
                   help="digits | mnist5k | text (built-in) or a local .npz with x_train, y_train, x_test, y_test "
                        "(default: the model's own; digits for yours)")
    p.add_argument("--batch", default="256",
                   help="minibatch size, or full: the whole training set at every step (default 256)")
    p.add_argument("--width", default="1.0", help="channel multiplier of the built-in models (1.0 = 64/128/256 for cnn)")
    p.add_argument("--lr", default="0.1", help="learning rate (default 0.1, the paper's MNIST setting)")
    p.add_argument("--ns-dtype", default="auto",
                   help="Newton-Schulz dtype: auto (bfloat16 where the device has it natively, else float32), "
                        "bfloat16, float32 or float64 (default auto)")
    p.add_argument("--channels-last", action="store_true",
                   help="keep 4-d weights and convolution activations in the channels-last memory format "
                        "(faster convolutions on many CPUs and GPUs; measured in docs/torch.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--keep-denormals", action="store_true",
                   help="do not flush subnormal floats to zero while timing (on a CPU they slow late-training "
                        "steps down by up to ~1.7x; see docs/torch.md)")


def device(text: str):
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    import torch

    if text not in ("auto", "cpu", "cuda"):
        raise CLIError(f"unknown device {text!r}; choose auto, cpu or cuda")
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cuda" and not torch.cuda.is_available():
        raise EnvironmentFailure("--device cuda was asked for but no CUDA device is available here; use --device "
                                 "cpu or auto")
    return text


def _torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise EnvironmentFailure("this command needs the torch extra: pip install 'dropmuon[torch]'") from None


@contextmanager
def torch_session(args):
    """Checks that torch is installed and, unless ``--keep-denormals``, flushes subnormal floats to
    zero for the command (set before torch's first parallel operation, so its worker threads
    inherit it; ``dropmuon.verification.torchside.optimizer.denormals_flushed`` says why). Restored after,
    so an in-process caller keeps torch's default."""
    _torch()
    import torch

    torch.set_flush_denormal(not args.keep_denormals)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def parse_common(args) -> tuple:
    """``(device, seed, batch, width, lr)`` from :func:`add_common`'s options (``batch`` an integer
    or ``"full"``)."""
    text = str(args.batch).strip()
    if text == "full":
        batch = "full"
    elif not text.lstrip("+-").isdigit():
        raise CLIError(f"--batch is {args.batch!r}: give a minibatch size (a positive integer) or full")
    else:
        batch = parse_number("--batch", text, int, positive=True)
    return (device(args.device), parse_number("--seed", args.seed, int, minimum=0), batch,
            parse_number("--width", args.width, positive=True), parse_number("--lr", args.lr, positive=True))


def add_compile(p):
    """``--compile``, for the subcommands that train."""
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model, one graph per start index, compiled before timing starts "
                        "(helps where compiled kernels beat eager ones; measured in docs/torch.md)")


#: the choices of ``--radius-rule``: ``dropmuon.verification.torchside.optimizer.RADIUS_RULES``
#: (repeated here so that ``dropmuon --help`` does not import torch) and ``theory``, the name
#: ``dropmuon predict`` gives the inverse-inclusion rule
RADIUS_RULE_CHOICES = ("common", "inverse-inclusion", "theory")


def add_radius_rule(p):
    """``--radius-rule``, for the subcommands that train."""
    p.add_argument("--radius-rule", default="common", choices=RADIUS_RULE_CHOICES, metavar="|".join(RADIUS_RULE_CHOICES),
                   help="each layer's Muon step length: common (Muon's one --lr, the default) or inverse-inclusion "
                        "(--lr / pi_i, pi_i the layer's probability of being updated under the schedule: the "
                        "theorems' radii; full Muon is unchanged); theory is another name for inverse-inclusion "
                        "(as in dropmuon predict)")


def radius_rule_of(args) -> str:
    """The optimizer's name of ``--radius-rule`` (``theory`` is ``inverse-inclusion``); ``common``
    for a subcommand without the option."""
    rule = getattr(args, "radius_rule", "common")
    return "inverse-inclusion" if rule == "theory" else rule


def load_model(args, dev: str, seed: int, width: float, *, training: bool = False) -> tuple:
    """``(setup, model, optimizer, loss, metric)`` for ``--model``/``--data``: the factory
    resolved, the data loaded, a model initialised from ``seed`` with its Drop-Muon optimizer (lr
    from ``--lr``), checked on a few examples (bad input: a one-line ``ValueError``); compiled
    with ``--compile`` and under ``--radius-rule`` when it is for ``training``."""
    from dropmuon.verification.torchside.experiment import ExperimentConfig, make_setup

    cfg = ExperimentConfig(seeds=(seed,), model=args.model, data=args.data, data_seed=seed, device=dev,
                           width=width, lr=parse_number("--lr", args.lr, positive=True), ns_dtype=args.ns_dtype,
                           channels_last=args.channels_last, compile=getattr(args, "compile", False),
                           radius_rule=radius_rule_of(args))
    setup = make_setup(cfg)
    model, opt, loss, metric = setup.build(cfg, seed, training=training)
    return setup, model, opt, loss, metric


def torch_command(fn):
    """Wrap a subcommand's ``run(args)`` in :func:`torch_session`."""
    @functools.wraps(fn)
    def run(args) -> int:
        with torch_session(args):
            return fn(args)
    return run


def progress_flag(args):
    """``None`` (a bar when stderr is a terminal) unless ``--no-progress``."""
    return False if args.no_progress else None


def _dims(shape) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


def print_layer_table(model_layers) -> None:
    """The layer table: per Drop-Muon layer (input first) its module, the parameters Muon takes
    with the matrix it sees, and those the AdamW companion takes; then, for every parameter of
    two or more dimensions that goes to AdamW, why (a position embedding, a matrix with a
    dimension 1, weight norm's magnitude, an embedding table). Nothing without a layer record."""
    if model_layers is None or not model_layers.algorithms:
        return
    from dropmuon.verification.torchside.optimizer import layer_matrix_shape

    print(f"{'layer':>5s}  {'module':<20s} {'Muon (the matrix it sees)':<44s}  AdamW companion")
    notes = []
    for j, (label, names, params, algs, whys) in enumerate(zip(model_layers.labels, model_layers.names,
                                                               model_layers.params, model_layers.algorithms,
                                                               model_layers.reasons), start=1):
        muon, adamw = [], []
        for n, p, a, why in zip(names, params, algs, whys):
            if a == "muon":
                m = layer_matrix_shape(p.shape)
                seen = "" if p.ndim == 2 else f" as {m[0]}×{m[1]}"
                muon.append(f"{n} {_dims(p.shape)}{seen}")
            else:
                adamw.append(n if p.ndim < 2 else f"{n} {_dims(p.shape)}*")
                if p.ndim >= 2:
                    notes.append(f"{n}: {why}")
        print(f"{j:>5d}  {label[-20:]:<20s} {', '.join(muon) or '-':<44s}  {', '.join(adamw) or '-'}")
    for note in notes:
        print(f"  * AdamW, not Muon: {note}")
