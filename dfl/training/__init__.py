"""The training loop: trainer, worker-thread runner, events, previews, summary, benchmark."""
