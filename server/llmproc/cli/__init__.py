"""Command-line front ends: llmproc (run a program once); llmproc-demo and llmproc-mcp follow."""
