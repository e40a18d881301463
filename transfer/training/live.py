"""DVCLive loggers for the training stages (no Keras here: a stage that trains nothing still
writes its metrics file without importing TensorFlow)."""

from pathlib import Path

from dvclive import Live


class FilesOnlyLive(Live):
    """DVCLive that only writes its files, without looking for a DVC repo or git commit.

    dvc.yaml already declares the metrics and plots and `dvc exp run` records the experiment,
    so DVCLive's own DVC integration adds nothing here; it also raises in a git repo that has
    no commit yet (treeverse/dvclive#522), which would break `dvc repro` in a new project.
    """

    def _init_dvc(self) -> None:
        pass


def open_live(directory: Path) -> Live:
    """A DVCLive logger writing only into `directory`, which dvc.yaml declares."""
    return FilesOnlyLive(str(directory), dvcyaml=None, save_dvc_exp=False, report=None)
