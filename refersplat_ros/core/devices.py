"""Torch device selection, shared by training, evaluation and inference."""
import torch


def resolve_device(device: str = 'auto') -> torch.device:
    """Map 'auto' to CUDA when available, else CPU; validate explicit devices."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    resolved = torch.device(device)
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} requested but CUDA is not available')
    return resolved
