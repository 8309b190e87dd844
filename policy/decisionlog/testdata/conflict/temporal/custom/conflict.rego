package temporal.custom

# Two values for one complete rule: an eval_conflict_error on every start.
_level := 1 if input.target.method == "StartWorkflowExecution"

_level := 2 if input.target.method == "StartWorkflowExecution"

deny contains "conflict" if _level == 1
