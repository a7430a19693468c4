"""Distillery's ML library: data, training, distillation, evaluation and inference, with no Django.

Submodules are imported explicitly (``from mlcore.data import read_table``) so that the web process can
validate uploads without paying for torch. One concern each:

  config      TrainConfig / DistillConfig: every hyperparameter, its default (the study's) and its check
  data        reading, validating and splitting labelled text tables (no torch)
  preview     token-length statistics for a dataset preview
  catalogue   base model ids, and loading: models and tokenizers from them
  encoding    texts to token ids, head or head+tail truncation
  sampling    which rows form each training batch, length-grouped and replayable per epoch
  batching    token ids to padded tensor batches
  devices     device choice, CPU threads, bf16 autocast, pinned non-blocking copies
  optim       AdamW (with weight decay groups) and the learning-rate schedules
  losses      the distillation and hidden-state losses
  loop        the training loop shared by fine-tuning and distillation
  checkpoint  atomic checkpoints and the exact resume
  train       finetune(): the fine-tuning entry point
  students    derived students (a teacher with some of its layers)
  distill     distill(): the distillation entry point
  evaluate    classification report, split scoring, CPU speed
  artifacts   a trained model's folder, its distillery.json (checked when it comes from outside), its zip
  inference   Classifier: a saved model, served
  batchfile   a table of texts classified into a CSV
  csvsafe     CSV writing whose cells no spreadsheet runs as a formula
  callbacks   how training reports progress and learns it should stop
  testing     a tiny BERT, toy data and a recording callback, for tests
"""
