"""The config model: parsed, validated settings; imports nothing of the runtime."""
