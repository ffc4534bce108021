"""The loss and network study behind ``benchmarks/loss_study.py``: research code, kept out of the plugin.

``study`` runs every arm (a network and a loss) by cross-validation and pools the counts; ``baselines`` wraps
MONAI's networks to the TransUNet's contract. Importable as ``octfluid_study`` when ``benchmarks/`` is on the
path: the script's own folder when run as ``python benchmarks/loss_study.py``, and the tests' conftest.
"""
