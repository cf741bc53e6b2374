"""``bluetrace-conform assignment``: a black-box grader for any implementation
of the original assignment, through its terminals and files only."""
