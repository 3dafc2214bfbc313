"""The checks of a rulebook or programme condition on its sqlglot syntax tree (see
:func:`greenscreen.rulebook.compile_condition`).

A module of its own so that sqlglot is imported only when a condition is checked: on a load
cache miss (``greenscreen._cache``), or for a condition no cache entry vouches for. Importing
sqlglot took 0.15-0.3 s of every command's start; a screen of the bundled rulebooks with a warm
cache never needs it.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Literal

import polars as pl
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from greenscreen.rulebook import (
    _FORBIDDEN_WORDS,
    _FUNCTIONS,
    MAX_CONDITION_CHARS,
    MAX_CONDITION_NESTING,
    MAX_CONDITION_TOKENS,
)


class _ConditionDialect(Postgres):
    """PostgreSQL syntax as polars reads it, plus `backquoted` names (polars takes them too)."""

    class Tokenizer(Postgres.Tokenizer):
        IDENTIFIERS = ['"', "`"]


DIALECT = _ConditionDialect()
_SQL_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Coalesce: "coalesce",
    exp.Abs: "abs",
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Length: "length",
    exp.Round: "round",
    exp.Greatest: "greatest",
    exp.Least: "least",
    exp.Nullif: "nullif",
}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Abs, exp.Round)
# the node types a condition may contain (exact types: exp.TryCast is a subclass of exp.Cast)
_SQL_NODES = {
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.Like,
    exp.ILike,
    exp.Cast,  # DATE 'YYYY-MM-DD' only, see _node_problem
    exp.DataType,
    *_COMPARISONS,
    *_ARITHMETIC,
    *_SQL_FUNCTIONS,
}
# tokens after which "(" groups (``x IN (…)``, ``a AND (b OR c)``); after anything else it calls
_GROUPING = {
    TokenType.L_PAREN,
    TokenType.COMMA,
    TokenType.IN,
    TokenType.AND,
    TokenType.OR,
    TokenType.NOT,
    TokenType.BETWEEN,
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.GT,
    TokenType.GTE,
    TokenType.LT,
    TokenType.LTE,
    TokenType.PLUS,
    TokenType.DASH,
    TokenType.STAR,
    TokenType.SLASH,
    TokenType.MOD,
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # sqlglot underlines the error position for a terminal


def parse(condition: str) -> tuple[pl.Expr, tuple[str, ...], str] | str:
    """Check a condition and parse it with polars (``rulebook._parse`` without the load
    cache): the expression and the names it reads, or the reason it is refused, with the SQL
    polars was given."""
    tree = _tree(condition)
    if isinstance(tree, str):
        return tree
    names = tuple(dict.fromkeys(column.name for column in tree.find_all(exp.Column)))
    try:
        # transform copies the tree; generating from that copy needs no copy of its own
        sql = tree.transform(_float_literal).sql(
            dialect=DIALECT, identify=True, comments=False, copy=False
        )
        expr = pl.sql_expr(sql)
    except RecursionError:
        return f"nested too deeply (at most {MAX_CONDITION_NESTING} levels)"
    except Exception as exc:  # polars raises SQLInterfaceError / SQLSyntaxError
        return f"not a valid SQL boolean expression ({exc})"
    roots = tuple(dict.fromkeys(expr.meta.root_names()))
    if set(roots) != set(names):  # polars must read what was checked
        return f"polars reads {sorted(roots)}, the condition names {sorted(names)}"
    return expr, roots, sql


def _float_literal(node: exp.Expr) -> exp.Expr:
    """A number other than a 64-bit integer as a float: polars makes 1.5 a Decimal, and a
    Decimal divided by zero (1.5 / an integer input that is 0) stops the screen."""
    if isinstance(node, exp.Literal) and not node.is_string:
        if not (node.this.isdigit() and int(node.this) < 2**63):
            return exp.cast(node.copy(), exp.DataType.Type.DOUBLE)
    return node


@lru_cache(maxsize=64)  # small: a tree is large and only needed while a file is checked
def _tree(condition: str) -> exp.Expr | str:
    """The condition's syntax tree once every node is allowed, or the reason it is refused."""
    if len(condition) > MAX_CONDITION_CHARS:
        return f"longer than {MAX_CONDITION_CHARS:,} characters ({len(condition):,})"
    try:
        tokens = DIALECT.tokenize(condition)
    except SqlglotError as exc:
        return f"not a valid SQL boolean expression ({_ANSI.sub('', str(exc))})"
    problem = _token_problem(tokens)
    if problem:
        return problem
    try:
        trees = DIALECT.parser().parse(tokens, condition)
        tree = trees[0] if len(trees) == 1 else None
        if tree is None:
            return "not a valid SQL boolean expression (empty)"
        for node in tree.walk():
            problem = _node_problem(node)
            if problem:
                return problem
    except RecursionError:
        return f"nested too deeply (at most {MAX_CONDITION_NESTING} levels)"
    except SqlglotError as exc:
        return f"not a valid SQL boolean expression ({_ANSI.sub('', str(exc))})"
    return tree


def _token_problem(tokens: list[Token]) -> str | None:
    """Refusals visible in the tokens (strings, comments and quoted names already told apart):
    size, nesting, statements, dollar quotes, and any call of a function not allowlisted,
    named as written (``lpad``, ``now``, ``"sqrt"``)."""
    if len(tokens) > MAX_CONDITION_TOKENS:
        return f"longer than {MAX_CONDITION_TOKENS:,} tokens ({len(tokens):,})"
    depth = 0
    for i, token in enumerate(tokens):
        kind = token.token_type
        if kind == TokenType.HEREDOC_STRING:
            return "dollar-quoted strings ($$…$$) are not allowed; quote text with '…'"
        if kind == TokenType.SEMICOLON:
            return "';' is not allowed: a condition is one expression"
        if kind not in (TokenType.STRING, TokenType.IDENTIFIER):
            if token.text.lower() in _FORBIDDEN_WORDS:
                return f"'{token.text.upper()}' is not allowed in a condition"
        if kind == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_CONDITION_NESTING:
                return f"nested deeper than {MAX_CONDITION_NESTING} parentheses"
            before = tokens[i - 1] if i else None
            if before and before.token_type not in _GROUPING:
                if before.text.lower() not in _FUNCTIONS:
                    return (
                        f"function '{before.text}' is not allowed "
                        f"(allowed: {', '.join(sorted(_FUNCTIONS))})"
                    )
        elif kind == TokenType.R_PAREN:
            depth -= 1
    return None


def _node_problem(node: exp.Expr) -> str | None:
    """Why a node of the syntax tree is not allowed in a condition, or None."""
    kind = type(node)
    if kind not in _SQL_NODES:
        if isinstance(node, exp.Func):
            name = node.name if kind is exp.Anonymous else node.sql_name().lower()
            return f"function '{name}' is not allowed (allowed: {', '.join(sorted(_FUNCTIONS))})"
        if kind is exp.RawString:
            return "dollar-quoted strings ($$…$$) are not allowed; quote text with '…'"
        return f"'{node.key.upper()}' is not allowed in a condition"
    if isinstance(node, exp.Column) and len(node.parts) > 1:
        return f"'{node.sql()}': a qualified name is not allowed; use the input field's name"
    if kind is exp.Cast:  # DATE '2024-01-01' parses as a cast of a string to a date
        value, to = node.this, node.args.get("to")
        extra = set(node.args) - {"this", "to", "_type"}
        if not (
            isinstance(value, exp.Literal)
            and value.is_string
            and isinstance(to, exp.DataType)
            and to.this == exp.DataType.Type.DATE
            and not any(node.args.get(key) for key in extra)
        ):
            return "casts are not allowed (a date is written DATE 'YYYY-MM-DD')"
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.this):
            return f"DATE '{value.this}' is not a date (YYYY-MM-DD)"
        try:
            dt.date.fromisoformat(value.this)
        except ValueError:
            return f"DATE '{value.this}' is not a date (YYYY-MM-DD)"
    if kind is exp.Null and not (isinstance(node.parent, exp.Is) and node.arg_key == "expression"):
        # polars cannot type a bare NULL (NULL AND NULL stops the screen)
        return "NULL is allowed only in IS NULL and IS NOT NULL"
    if kind is exp.Is and not isinstance(node.expression, exp.Null | exp.Boolean):
        return "IS must be followed by NULL, TRUE or FALSE"
    if kind in (exp.Like, exp.ILike) and not (
        isinstance(node.expression, exp.Literal) and node.expression.is_string
    ):
        return "LIKE needs a quoted pattern ('A+%')"
    if kind is exp.In and not all(_is_literal(value) for value in node.expressions):
        return "IN needs a list of literals (IN ('a', 'b'))"
    if kind is exp.Between and node.args.get("symmetric"):
        return "BETWEEN SYMMETRIC is not allowed"
    return None


def _is_literal(node: exp.Expr) -> bool:
    if isinstance(node, exp.Neg):
        node = node.this
    return type(node) in (exp.Literal, exp.Boolean, exp.Null, exp.Cast)


@lru_cache(maxsize=16384)
def type_problem(
    condition: str, inputs: tuple[tuple[str, str], ...], result: Literal["boolean", "number"]
) -> str | None:
    """Type-check a condition already accepted by :func:`_tree` against its inputs' kinds
    (``boolean``, ``number``, ``text``, ``date``; ``any`` when unknown): what polars would
    refuse at screen time (text compared with a number) or what is not ``result``."""
    tree = _tree(condition)
    assert not isinstance(tree, str)
    columns = dict(inputs)
    kinds: dict[int, str] = {}
    for node in reversed(list(tree.walk(bfs=True))):  # children before their parents
        try:
            kinds[id(node)] = _node_kind(node, [kinds[id(c)] for c in node.iter_expressions()])
        except _TypeProblem as problem:
            return str(problem)
        if type(node) is exp.Column:
            kinds[id(node)] = columns.get(node.name, "any")
    top = kinds[id(tree)]
    if top not in (result, "any"):
        what = {"null": "always NULL", "boolean": "true/false", "text": "text"}.get(top, f"a {top}")
        if result == "boolean":
            return (
                f"gives {what}, not true/false: a condition is a comparison, a test "
                "(IS NULL, IN, BETWEEN, LIKE) or a yes/no field"
            )
        return f"gives {what}, not a number"
    return None


class _TypeProblem(Exception):
    pass


def _node_kind(node: exp.Expr, args: list[str]) -> str:
    """The kind of value a node gives from its operands' kinds; raises _TypeProblem."""
    kind = type(node)
    if kind is exp.Literal:
        return "text" if node.is_string else "number"
    if kind is exp.Boolean:
        return "boolean"
    if kind is exp.Null:
        return "null"
    if kind is exp.Cast:
        return "date"
    if kind is exp.Paren:
        return args[0]
    if kind in (exp.And, exp.Or, exp.Not):
        _need(node, args, "boolean")
        return "boolean"
    if kind in _COMPARISONS:
        _common(node, args)
        return "boolean"
    if kind is exp.Is:
        return "boolean"
    if kind in (exp.Like, exp.ILike):
        _need(node, args, "text")
        return "boolean"
    if kind in _ARITHMETIC:
        _need(node, args, "number")
        return "number"
    if kind in (exp.Lower, exp.Upper):
        _need(node, args, "text")
        return "text"
    if kind is exp.Length:
        _need(node, args, "text")
        return "number"
    if kind in (exp.Coalesce, exp.Greatest, exp.Least, exp.Nullif):
        return _common(node, args)
    return "any"  # columns (set by the caller), identifiers, the DATE type


def _need(node: exp.Expr, args: list[str], wanted: str) -> None:
    for arg in args:
        if arg not in (wanted, "null", "any"):
            raise _TypeProblem(f"'{_short(node)}' needs {wanted} operands, not {arg}")


def _common(node: exp.Expr, args: list[str]) -> str:
    known = sorted({arg for arg in args if arg not in ("null", "any")})
    if len(known) > 1:
        raise _TypeProblem(f"'{_short(node)}' mixes {' and '.join(known)}")
    if known:
        return known[0]
    return "any" if "any" in args else "null"


def _short(node: exp.Expr) -> str:
    text = node.sql(dialect=DIALECT, comments=False)
    return text if len(text) <= 80 else text[:80] + "…"
