"""Fine-tuning and training of Qwen3-ASR-layout checkpoints (`asrstream train`)."""
