"""Training and fine-tuning with the paper's margin losses; writes ``backbone.pth`` for export.

Nothing heavy is imported here: ``facerec train`` imports PyTorch only when a command runs.
"""
