class RegtestResult: pass
class LeaveOneOutResult: pass
class TrimfillResult: pass
