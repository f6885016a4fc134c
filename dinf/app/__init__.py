"""Run plumbing: the entry point's script, the LightningModule, the command line, checkpoints, tracking."""
from dinf.app import resolvers  # noqa: F401 - registers ${device:…} before any config is composed
