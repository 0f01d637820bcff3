"""Training: checkpoints (atomic), running model averaging, DDP setup, the loop, safeguards.

- :mod:`gmot.checkpoint` (below training; decoding imports it too): ``save_checkpoint``,
  ``load_checkpoint``, ``average_checkpoints``, ``average_checkpoints_with_averaged_model``;
- :mod:`gmot.training.model_avg`: the running averaged model;
- :mod:`gmot.training.ddp`: ``--world-size`` (mp.spawn) and torchrun setup;
- :mod:`gmot.training.loop`: loss composition and schedules, metrics, one epoch, validation;
- :mod:`gmot.training.safeguards`: non-finite losses, fp16 grad-scale watchdog, bad batches;
- :mod:`gmot.training.train`: the ``train.py`` command line (``main``).

Sub-modules are imported on demand (``import gmot.training`` is cheap).
"""
