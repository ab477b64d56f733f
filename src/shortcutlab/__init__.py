"""shortcut-lab: shortcut learning and the trustworthiness of explanations on Colored MNIST."""

__version__ = "0.1.0"
