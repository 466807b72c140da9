"""A strict reader of .agent_metrics.json, as the Python side reads it: all 11 root keys, the
documented JSON types (counters int, money and durations int or float), timestamps that
datetime.fromisoformat reads once the trailing Z is written as +00:00. Prints a summary as JSON;
exits 1 naming the first problem."""
import json
import sys
from datetime import datetime

ROOT = {
    "version": int, "project_name": str, "created_at": "ts", "updated_at": "ts",
    "total_sessions": int, "total_tokens": int, "total_cost_usd": "num",
    "total_duration_seconds": "num", "agents": dict, "events": list, "sessions": list,
}
EVENT = {
    "event_id": str, "agent_name": str, "session_id": str, "ticket_key": str,
    "started_at": "ts", "ended_at": "ts?", "duration_seconds": "num", "status": str,
    "input_tokens": int, "output_tokens": int, "total_tokens": int,
    "estimated_cost_usd": "num", "artifacts": list, "error_message": str, "model_used": str,
}
SESSION = {
    "session_id": str, "session_number": int, "session_type": str, "started_at": "ts",
    "ended_at": "ts?", "status": str, "agents_invoked": list, "total_tokens": int,
    "total_cost_usd": "num", "tickets_worked": list,
}
COUNTERS = ["total_invocations", "successful_invocations", "failed_invocations", "total_tokens",
            "commits_made", "prs_created", "prs_merged", "files_created", "files_modified",
            "lines_added", "lines_removed", "tests_written", "issues_created", "issues_completed",
            "messages_sent", "reviews_completed", "xp", "level", "current_streak", "best_streak"]
NUMBERS = ["total_cost_usd", "total_duration_seconds", "success_rate", "avg_duration_seconds",
           "avg_tokens_per_call", "cost_per_success_usd"]
PROFILE = {"agent_name": str, "last_error": str, "last_active": "ts?",
           "achievements": list, "strengths": list, "weaknesses": list, "recent_events": list,
           **{k: int for k in COUNTERS}, **{k: "num" for k in NUMBERS}}


def check(obj, spec, where):
    for key, kind in spec.items():
        if key not in obj:
            sys.exit(f"{where}.{key}: missing")
        value = obj[key]
        if kind in ("ts", "ts?"):
            if kind == "ts?" and value == "":
                continue
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif kind == "num":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                sys.exit(f"{where}.{key}: not a number: {value!r}")
        elif isinstance(value, bool) or not isinstance(value, kind):
            sys.exit(f"{where}.{key}: expected {kind.__name__}, got {value!r}")


state = json.load(open(sys.argv[1], encoding="utf-8"))
check(state, ROOT, "root")
for i, event in enumerate(state["events"]):
    check(event, EVENT, f"events[{i}]")
for i, session in enumerate(state["sessions"]):
    check(session, SESSION, f"sessions[{i}]")
for name, profile in state["agents"].items():
    check(profile, PROFILE, f"agents.{name}")
print(json.dumps({"events": len(state["events"]), "sessions": len(state["sessions"]),
                  "agents": sorted(state["agents"]), "total_tokens": state["total_tokens"]}))
