"""The training job: data, fitting, evaluation, publishing a model version (entry point: job.py)."""
