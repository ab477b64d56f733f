"""The pipeline's own errors; each message names the file or params key at fault and the way out."""


class ArtifactError(ValueError):
    """An artifact is missing, unreadable or corrupt; the message names the file and the way back."""


class GateError(ValueError):
    """A trained model failed its quality gate: the stage publishes nothing."""


class DataError(RuntimeError):
    """Input data do not have the expected shape or content."""
