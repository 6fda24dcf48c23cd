"""Quizzes (问答有奖): ops define them; members see the questions without their answers and get
one rewarded attempt per quiz. The attempt item is written only if absent (one per member), and
the stream handler pays its points through the ledger under one entry id."""
from __future__ import annotations

import json
import uuid
from typing import Any

from pynamodb.exceptions import PutError

from ..campaigns import service as campaigns
from ..core import clock
from ..core.errors import Conflict, NotFound, Unprocessable
from ..core.pagination import PageQuery, page
from ..i18n import t
from ..rewards import ledger
from ..rewards.rules import Award
from ..store.base import condition_failed
from ..streams import Change, on_change
from . import rules
from .models import Quiz, QuizAttempt
from .running import member_or_401


def create(spec: Any, actor: str) -> dict[str, Any]:
    """`spec`: routes.QuizIn. Cross-field checks the schema cannot state answer 422 here."""
    campaign = campaigns.get(spec.campaign_id)  # 404 for an unknown campaign
    for number, question in enumerate(spec.questions):
        if question.answer >= len(question.options):
            raise Unprocessable(t("question {number}: the answer must be the index of one of its options",
                                  number=number + 1),
                                code="answer_not_an_option", details={"question": number})
    if spec.pass_mark is not None and spec.pass_mark > len(spec.questions):
        raise Unprocessable(t("pass_mark is more than the number of questions"), code="pass_mark_too_high")
    quiz_id, at = uuid.uuid4().hex, clock.now_iso()
    quiz = Quiz(*Quiz.key(quiz_id), quiz_id=quiz_id, campaign_id=campaign.campaign_id, title=spec.title,
                questions=json.dumps([q.model_dump() for q in spec.questions], ensure_ascii=False),
                points=spec.points, pass_mark=spec.pass_mark, starts_at=spec.starts_at, ends_at=spec.ends_at,
                created_at=at, created_by=actor, gsi1pk=f"QUIZZES#{campaign.campaign_id}", gsi1sk=f"{at}#{quiz_id}")
    try:
        quiz.save(condition=Quiz.pk.does_not_exist())
    except PutError as exc:
        # a fresh random id: only this call's own write, resent by botocore after its answer was lost
        if not condition_failed(exc):
            raise
    return render_for_ops(quiz)


def _get(quiz_id: str) -> Quiz:
    try:
        return Quiz.get(*Quiz.key(quiz_id))
    except Quiz.DoesNotExist:
        raise NotFound(t("no quiz with this id"), code="quiz_not_found") from None


def render_for_ops(quiz: Quiz) -> dict[str, Any]:
    return {**_common(quiz), "questions": json.loads(quiz.questions), "created_by": quiz.created_by}


def render_for_member(quiz: Quiz) -> dict[str, Any]:
    questions = [{"text": q["text"], "options": q["options"]} for q in json.loads(quiz.questions)]
    return {**_common(quiz), "questions": questions}


def _common(quiz: Quiz) -> dict[str, Any]:
    return {"quiz_id": quiz.quiz_id, "campaign_id": quiz.campaign_id, "title": quiz.title, "points": int(quiz.points),
            "pass_mark": int(quiz.pass_mark) if quiz.pass_mark is not None else None,
            "starts_at": quiz.starts_at, "ends_at": quiz.ends_at, "created_at": quiz.created_at}


def for_member(quiz_id: str) -> dict[str, Any]:
    return render_for_member(_get(quiz_id))


def list_quizzes(campaign_id: str | None, page_query: PageQuery) -> dict[str, Any]:
    campaign_id = campaign_id or campaigns.DEFAULT_ID
    return page(Quiz.by_gsi1.query, page_query, f"quizzes:{campaign_id}", render_for_ops,
                hash_key=f"QUIZZES#{campaign_id}", scan_index_forward=False)


def answer(quiz_id: str, member_id: str, answers: list[int]) -> dict[str, Any]:
    quiz = _get(quiz_id)
    now = clock.now_iso()
    campaign = campaigns.current(quiz.campaign_id)
    if not (quiz.starts_at <= now < quiz.ends_at) or campaign is None or not campaigns.is_running(campaign):
        raise Conflict(t("this quiz is not open now"), code="quiz_not_open",
                       details={"starts_at": quiz.starts_at, "ends_at": quiz.ends_at})
    solutions = [q["answer"] for q in json.loads(quiz.questions)]
    if len(answers) != len(solutions):
        raise Unprocessable(t("send one answer per question ({count})", count=len(solutions)),
                            code="wrong_answer_count",
                            details={"questions": len(solutions)})
    member_or_401(member_id)
    right, passed = rules.grade(answers, solutions, int(quiz.pass_mark) if quiz.pass_mark is not None else None)
    attempt = QuizAttempt(*QuizAttempt.key(quiz_id, member_id), quiz_id=quiz_id, member_id=member_id,
                          campaign_id=quiz.campaign_id, campaign_version=int(campaign.version),
                          answers=json.dumps(answers), right=right, total=len(solutions), passed=passed,
                          points=int(quiz.points) if passed else 0, at=now, attempt_id=uuid.uuid4().hex)
    try:
        attempt.save(condition=QuizAttempt.pk.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        first = QuizAttempt.get(*QuizAttempt.key(quiz_id, member_id), consistent_read=True)
        # botocore resends a put whose answer was lost: the condition then meets this call's own attempt
        return render_attempt(first, already=first.attempt_id != attempt.attempt_id)
    return render_attempt(attempt, already=False)


def render_attempt(attempt: QuizAttempt, already: bool) -> dict[str, Any]:
    return {"quiz_id": attempt.quiz_id, "correct": int(attempt.right), "total": int(attempt.total),
            "passed": bool(attempt.passed), "points_awarded": 0 if already else int(attempt.points),
            "already_answered": already}


@on_change("main", "quiz_attempt")
def pay_quiz(change: Change) -> None:
    attempt = change.new
    if change.event != "INSERT" or not int(attempt.points):
        return
    rule_set = campaigns.rules_at(attempt.campaign_id, int(attempt.campaign_version))
    grant = Award(attempt.member_id, "quiz", attempt.quiz_id, int(attempt.points), "quiz answered right")
    ledger.award(grant, attempt.campaign_id, rule_set, at=attempt.at)
