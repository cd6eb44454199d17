"""One-command benchmarks (`make bench`). They print figures; they are not pass/fail tests."""
