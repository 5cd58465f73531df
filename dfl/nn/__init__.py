"""Backend-neutral network parts shared by the models: blocks, autoencoders, losses, optimizers."""
