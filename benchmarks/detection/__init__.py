"""Detection quality benchmark: in-distribution and transfer window F1 over several seeds."""
