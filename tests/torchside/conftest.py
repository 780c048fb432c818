import pytest


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a test module that checks behaviour on tiny batches, not
    speed: with several OpenMP threads on a machine whose cores are busy with other work, each
    small op waits for a descheduled thread (measured: a tiny-CNN step ~3 ms on one thread, ~0.7 s
    with two on a busy two-core machine; a test file 37 s against 5 s)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits split by seed 0, the data set of the torch-side behaviour tests."""
    pytest.importorskip("sklearn")
    from dropmuon.verification.torchside import load_digits

    return load_digits(seed=0)
