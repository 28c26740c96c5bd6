"""Helpers with no labkit concept of their own: the device and precision (``device``), text
cleaning and encoding (``text``), quieter Hugging Face logs (``quiet``), OpenMP threads
(``threads``), the CPU allocator (``malloc``), eager attention for inspection (``eager``), atomic
checkpoints (``checkpoint``), hub-error sniffing (``hub``) and optional imports (``optional``).
"""
