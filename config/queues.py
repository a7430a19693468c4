"""The Celery queues, named once: settings route to them, workers consume them, jobs.models picks one per job.

Plain Python (no Django), so the settings, the embedded launcher and the models can all import it.
"""

GPU = "gpu"  # training jobs (fine-tune, distil); a worker without a GPU trains on CPU
CPU = "cpu"  # light work: file classification, periodic housekeeping, webhooks
ALL = (GPU, CPU)  # what a worker that does everything consumes (make up, the Procfile's worker)
