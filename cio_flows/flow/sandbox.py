"""The template sandbox: what a flow's templates may build, read and return.

Jinja's sandbox stops attribute tricks (`__class__`, `__globals__`) but not resource use: one
`{{ "x" * 10**9 }}` takes gigabytes. Here every operator, call and filter that can make a value
grow is checked before it runs, and every result after, against `MAX_SIZE`. Templates cannot
change lists or maps they are given (the immutable sandbox), so a loop cannot double a value.

The environment reaches templates as `TemplateEnv`: Customer.io's own keys are not in it at all,
and variables whose names say KEY, TOKEN, SECRET or PASSWORD can be read only by their literal
name (`env.NAME`), never listed or looked up by a computed name.
"""

from __future__ import annotations

import math
import re
import string
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..errors import NotJsonError, TemplateLimitError
from ..redact import CREDENTIAL_VARS, is_secret_name

# Characters in a string, or items (counted through nested lists and maps), that any value a
# template builds may have: room for large payloads, far from what exhausts memory.
MAX_SIZE = 10_000_000
# Bits in an integer a template computes (2**1024 is past any JSON number an API reads).
MAX_INT_BITS = 1024
# Loop steps, calls and filters one render may take: nested `range(100000)` loops or a macro
# calling itself twice per level stop here, in a second or two, not after hours.
MAX_OPERATIONS = 2_000_000
# What a macro call costs of that budget: it does the work of some ten plain calls.
MACRO_COST = 10
# Characters of text the slow text filters (wordwrap) may take.
MAX_WRAPPED = 1_000_000
# Indentation tojson may add per level.
MAX_JSON_INDENT = 64


# --- the render budget -------------------------------------------------------------------------


class _Budget(threading.local):
    """Operations left to the render running on this thread; None outside one. (A class
    default, so that a thread that never rendered reads None without an AttributeError raised
    and caught on every filter call.)"""

    left: int | None = None


_budget = _Budget()  # renders run on many threads (workers) at once


class _RenderBudget:
    """`with render_budget():` as a plain class (a generator context manager costs a
    microsecond a render, and conditions render once a row)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _budget.left = MAX_OPERATIONS

    def __exit__(self, *exc_info: object) -> None:
        _budget.left = None


_RENDER_BUDGET = _RenderBudget()


def render_budget() -> AbstractContextManager[None]:
    """A budget of MAX_OPERATIONS for the render done inside, on this thread. Outside one
    (the generated renderers' inlined `{{ row.x | filter }}`), nothing is counted: a fixed
    chain of filters cannot loop."""
    return _RENDER_BUDGET


def _charge(count: int = 1) -> None:
    left = _budget.left
    if left is None:
        return
    left -= count
    _budget.left = left
    if left < 0:
        raise TemplateLimitError(
            f"over {MAX_OPERATIONS:,} loop steps and calls in one template"
            " (nested loops or recursion)"
        )


# The name every `{% for %}`'s iterable is passed through (see Sandbox._parse).
COUNTED = "__counted__"


def _counted(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _charge()
        yield item


# --- sizes ----------------------------------------------------------------------------------


def measure(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters and items in a value, counting shared parts each time; stops past `limit`.

    Walks with its own stack (no recursion limit) and stops early, so a list holding one big
    list 100,000 times costs no more than `limit` steps.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 1
        if total > limit:
            return total
    return total


def check_size(value: Any) -> Any:
    """`value` itself, or TemplateLimitError when it is over the limits."""
    kind = type(value)
    if (kind is str and len(value) <= MAX_SIZE) or kind is bool or kind is float or value is None:
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(f"a number over 2**{MAX_INT_BITS}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_SIZE:
            raise TemplateLimitError(_too_big(len(value)))
        return value
    if isinstance(value, list | tuple | Mapping) and measure(value) > MAX_SIZE:
        raise TemplateLimitError(f"a value over {MAX_SIZE:,} characters or items")
    return value


def _too_big(size: int, what: str = "a string of {:,} characters") -> str:
    return f"{what.format(size)} (the limit is {MAX_SIZE:,})"


def _require(size: int, what: str = "a string of {:,} characters") -> None:
    if size > MAX_SIZE:
        raise TemplateLimitError(_too_big(size, what))


# --- operators --------------------------------------------------------------------------------


def _check_power(base: Any, exponent: Any) -> None:
    grows = _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1
    if grows and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise TemplateLimitError(f"{base} ** {exponent} is over 2**{MAX_INT_BITS}")


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise TemplateLimitError(f"a number over 2**{MAX_INT_BITS}")
        return
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and _is_int(times) and times > 0:
            if isinstance(seq, str):
                _require(len(seq) * times)
            else:
                if measure(seq) * times > MAX_SIZE:
                    raise TemplateLimitError(_too_big(len(seq) * times, "a list of {:,} items"))


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(template: str, args: Any) -> None:
    """`"%999999999d" % 1`: widths and precisions, literal or `*`, stay under the limit."""
    values = args if isinstance(args, tuple) else (args,)
    for width, precision in _PERCENT_SPEC.findall(template):
        for part in (width, precision):
            if part.isdigit():
                _require(int(part))
            elif part == "*":
                _require(max((v for v in values if _is_int(v)), default=0))


def _check_brace_format(template: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """`"{:>999999999}".format(1)`: widths, literal or nested (`{:{}}`), stay under the limit."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format reports the broken format itself
    for _, _, spec, _ in fields:
        if not spec:
            continue
        for digits in re.findall(r"\d+", spec):
            _require(int(digits))
        if "{" in spec:
            numbers = [v for v in (*args, *kwargs.values()) if _is_int(v)]
            _require(max(numbers, default=0))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- calls and filters ------------------------------------------------------------------------


def _join_items(items: Any) -> Any:
    """Join's items as a list, so their number is known before joining (ranges, generators)."""
    if isinstance(items, str | list | tuple | Mapping) or not hasattr(items, "__iter__"):
        return items
    return _bounded_list(items)


def _check_join(separator: Any, items: Any) -> None:
    if isinstance(separator, str) and isinstance(items, list | tuple):
        _require(len(separator) * max(len(items) - 1, 0) + measure(items))


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        _require(len(text) + hits * len(new))


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Methods of strings and lists whose numbers or arguments size their result.

    Returns the arguments to call with (join's items made a list, to count them first).
    """
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    wrapped = getattr(method, "__wrapped__", None)  # the sandbox wraps str.format
    if wrapped is not None and isinstance(getattr(wrapped, "__self__", None), str):
        _check_brace_format(wrapped.__self__, args, kwargs)
        return args
    if not isinstance(owner, str | bytes | list | tuple):
        return args
    if name == "join" and args:
        args = (_join_items(args[0]), *args[1:])
        _check_join(owner, args[0])
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "expandtabs" and isinstance(owner, str | bytes):
        tabsize = kwargs.get("tabsize", args[0] if args else 8)
        if _is_int(tabsize):
            tab = "\t" if isinstance(owner, str) else b"\t"
            _require(len(owner) + owner.count(tab) * max(tabsize, 0))  # type: ignore[arg-type]
    for value in (*args, *kwargs.values()):
        if _is_int(value):
            _require(value)  # center, ljust, rjust, zfill, expandtabs, ...
    return args


# Filters whose argument sizes their result, by the argument's position after the value.
_SIZE_ARGUMENTS = {"center": "width", "indent": "width", "batch": "linecount", "slice": "slices"}


def _check_tojson(value: Any, indent: Any = None, **_: Any) -> None:
    """`tojson(indent=10**9)`: the indentation is repeated on every line, at every level."""
    if indent is None:
        return
    width = len(indent) if isinstance(indent, str) else indent if _is_int(indent) else 0
    if width > MAX_JSON_INDENT:
        raise TemplateLimitError(f"tojson indent {width} (the limit is {MAX_JSON_INDENT})")
    size, depth = _shape(value)
    _require(size * (2 + width * depth), "JSON text of about {:,} characters")


def _check_indent(text: Any, width: Any = 4, *_: Any, **kwargs: Any) -> None:
    """`indent`: each line of the text gets the width again."""
    width = kwargs.get("width", width)
    if isinstance(text, str):
        pad = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        _require(len(text) + pad * (text.count("\n") + 1))


def _check_wordwrap(text: Any, width: Any = 79, *_: Any, **kwargs: Any) -> None:
    """`wordwrap`: slow per character, and a narrow width adds a line break per character."""
    width = kwargs.get("width", width)
    if isinstance(text, str) and len(text) > MAX_WRAPPED:
        raise TemplateLimitError(
            f"wordwrap of {len(text):,} characters (the limit is {MAX_WRAPPED:,})"
        )
    if _is_int(width) and width < 1:
        raise TemplateLimitError(f"wordwrap width {width}: it must be at least 1")


_TEXT_CHECKS: dict[str, Callable[..., None]] = {
    "tojson": _check_tojson,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
}


def _shape(value: Any) -> tuple[int, int]:
    """(characters and items, nesting depth) of a value, stopping past MAX_SIZE."""
    size, depth = 0, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and size <= MAX_SIZE:
        item, level = stack.pop()
        depth = max(depth, level)
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, Mapping):
            size += len(item)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            size += len(item)
            stack.extend((child, level + 1) for child in item)
        else:
            size += 1
    return size, depth


# Filters whose arguments are checked before they run (the others: only their result).
_ARGUMENT_CHECKS = frozenset({*_SIZE_ARGUMENTS, "format", "join", "replace", *_TEXT_CHECKS})


def _guard_filter(name: str, function: Any) -> Any:
    """The filter, checking its arguments before and its result after."""
    # Filters marked pass_environment/pass_context get it first; the value follows.
    offset = 1 if hasattr(function, "jinja_pass_arg") else 0
    if name not in _ARGUMENT_CHECKS:
        return _guard_result(function, offset)

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        refuse_secrets(*args[offset:], *kwargs.values())
        rest = args[offset + 1 :]
        if name in _SIZE_ARGUMENTS:
            size = kwargs.get(_SIZE_ARGUMENTS[name], rest[0] if rest else 0)
            if _is_int(size):
                _require(size)
        elif name == "format" and len(args) > offset:
            _check_percent_format(str(args[offset]), tuple(rest) or tuple(kwargs.values()))
        elif name == "join" and len(args) > offset:
            items = _join_items(args[offset])
            args = (*args[:offset], items, *rest)
            _check_join(kwargs.get("d", rest[0] if rest else ""), items)
        elif name == "replace" and len(args) > offset + 2:
            _check_replace(args[offset], args[offset + 1], args[offset + 2])
        if name in _TEXT_CHECKS and len(args) > offset:
            _TEXT_CHECKS[name](args[offset], *rest, **kwargs)
        _charge()
        return check_size(function(*args, **kwargs))

    return guarded


def _guard_result(function: Any, offset: int) -> Any:
    """A filter with no argument to check first (`float`, `lower`): what `guarded` does for
    it, without the per-call branching (it runs once a row in `{{ row.x | float }}`)."""

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in args[offset:]:
            if type(value) is SecretText:
                raise value.refusal()
        if kwargs:
            refuse_secrets(*kwargs.values())
        _charge()
        return check_size(function(*args, **kwargs))

    return guarded


# --- the environment --------------------------------------------------------------------------


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with size limits on operators, calls and filters."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Generators of text or state that payloads have no use for (lipsum(10**9) alone
        # is a denial of service); namespace() would let a loop carry a doubling value.
        for name in ("lipsum", "cycler", "joiner", "namespace"):
            self.globals.pop(name, None)
        self.globals[COUNTED] = _counted
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict, not Jinja's ChainMap over the environment's:
        each render copies them twice (the context, its globals' keys), and a ChainMap copies
        some ten times slower (4 of the 9 us of `{{ a ~ b }}`). Nothing is lost: the globals
        are complete before any template is made (jinja_env.py) and never change after."""
        return {**self.globals, **(d or {})}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """The template's tree, each `{% for %}` iterating through _counted (the budget)."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.Name(COUNTED, "load"), [loop.iter], [], None, None, lineno=loop.lineno
            )
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        refuse_secrets(left, right)
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, right)
        return check_size(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        refuse_secrets(__obj, *args, *kwargs.values())  # a secret passed to a macro or method
        _charge(MACRO_COST if isinstance(__obj, Macro) else 1)
        for value in (*args, *kwargs.values()):
            check_size(value)  # a macro called with ever-doubling arguments
        args = _check_method(__obj, args, kwargs)
        return check_size(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        refuse_secrets(obj)
        if isinstance(obj, TemplateEnv) and not hasattr(Mapping, attribute):
            value = obj.by_literal_name(attribute)
            if value is not None:
                return value
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, TemplateEnv) and isinstance(argument, str):
            if argument in obj:
                return obj[argument]
            return obj.undefined_or_refused(argument, self.undefined)
        return super().getitem(obj, argument)


def _credential_refusal(name: str) -> str:
    return f"templates cannot read {name}: Customer.io keys are sent by the runner, in headers"


class TemplateEnv(Mapping[str, Any]):
    """The environment as templates see it.

    Iterating, `items()`, `get()` and `env[expr]` see only variables whose names are not
    secret; a secret-named one is read by its literal name (`env.GITHUB_TOKEN`), which the
    static check allows only where the value goes straight into the output, unchanged, so
    that the redactor finds it there.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._public = {k: v for k, v in environ.items() if not is_secret_name(k)}
        self._secret = {
            k: v for k, v in environ.items() if is_secret_name(k) and k not in CREDENTIAL_VARS
        }

    def __getitem__(self, name: str) -> str:
        if name in self._public:
            return self._public[name]
        if name in self._secret or name in CREDENTIAL_VARS:
            raise SecurityError(self.refusal(name))
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._public

    def __iter__(self) -> Iterator[str]:
        return iter(self._public)

    def __len__(self) -> int:
        return len(self._public)

    def by_literal_name(self, name: str) -> str | SecretText | None:
        """`env.NAME`: a secret-named one as a SecretText (the static check saw how it is used)."""
        if name in CREDENTIAL_VARS:
            raise SecurityError(_credential_refusal(name))
        if name in self._public:
            return self._public[name]
        return SecretText(name, self._secret[name]) if name in self._secret else None

    def undefined_or_refused(self, name: str, undefined: Any) -> Any:
        if name in self._secret or name in CREDENTIAL_VARS:
            raise SecurityError(self.refusal(name))
        return undefined(obj=self, name=name)

    @staticmethod
    def refusal(name: str) -> str:
        if name in CREDENTIAL_VARS:
            return _credential_refusal(name)
        return f"{name} is secret: read it only as {{{{ env.{name} }}}}"


class SecretText:
    """A secret-named variable's value: it goes into a template's output as it is, and nothing
    else. Any filter, call, operator, comparison, slice, iteration or test on it is an error,
    so that a template that got hold of it some way the static check missed still cannot
    change it past the redactor or guess it piece by piece."""

    __slots__ = ("_name", "_value")

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def __str__(self) -> str:  # the output, where the redactor masks it
        return self._value

    def __repr__(self) -> str:
        return f"<secret {self._name}>"

    def refusal(self) -> SecurityError:
        return SecurityError(TemplateEnv.refusal(self._name))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise self.refusal()

    __getitem__ = __iter__ = __reversed__ = __len__ = __contains__ = __bool__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _refuse
    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = __format__ = _refuse
    __int__ = __float__ = __index__ = _refuse


def refuse_secrets(*values: Any) -> None:
    """SecurityError when one of the values is a secret (SecretText)."""
    for value in values:
        if type(value) is SecretText:
            raise value.refusal()


# --- results ----------------------------------------------------------------------------------

_SCALARS = (str, bool, type(None))


def to_json(value: Any) -> Any:
    """A template's result as a JSON value, within the limits.

    Iterators (`map`, `select`, `unique`), ranges and mappings become lists and objects;
    anything else that JSON has no form for (functions, `self`, undefined values) is refused.
    """
    kind = type(value)
    if (kind is str and len(value) <= MAX_SIZE) or kind is bool or value is None:
        return value  # the common cases, without a walk
    if kind is int and value.bit_length() <= MAX_INT_BITS:
        return value
    if kind is float and math.isfinite(value):  # `{{ row.amount | float }}`
        return value
    if isinstance(value, list | tuple | Mapping):
        check_size(value)
    return _convert(value)


def _convert(value: Any) -> Any:
    if type(value) is SecretText:
        return str(value)  # `{{ env.TOKEN }}`: the whole value, as it is
    if isinstance(value, str | int) or value is None:  # bool is an int
        return check_size(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJsonError(f"{value} is not a JSON number")
        return value
    if isinstance(value, list):
        converted = [_convert(item) for item in value]
        return value if all(a is b for a, b in zip(converted, value, strict=True)) else converted
    if isinstance(value, Mapping):
        if type(value) is dict and all(
            isinstance(k, str) and isinstance(v, _SCALARS) for k, v in value.items()
        ):
            return value
        return {_key(k): _convert(v) for k, v in value.items()}
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, tuple | range | Iterator | set | frozenset):
        return _convert(check_size(_bounded_list(value)))
    if callable(value):
        name = getattr(value, "__name__", type(value).__name__)
        raise NotJsonError(f"'{name}' is a function, not a value (call it: {name}(...))")
    raise NotJsonError(f"a {type(value).__name__} is not a JSON value")


def _bounded_list(values: Any) -> list[Any]:
    items = []
    for item in values:
        items.append(item)
        if len(items) > MAX_SIZE:
            raise TemplateLimitError(f"a list of over {MAX_SIZE:,} items")
    return items


def _key(key: Any) -> str | int | float | None:
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | float) or key is None:
        return key  # json writes these as strings itself
    raise NotJsonError(f"a {type(key).__name__} cannot be an object key")
