"""Evaluating a function as a TPU would at its default float32 matmul precision, on a CPU.

At `Precision.DEFAULT` a TPU rounds the float32 operands of every matrix product and
convolution to bfloat16 (8 bits of mantissa) and accumulates in float32; XLA:CPU computes
them in full float32. `emulate(fn)(*args)` runs `fn`'s jaxpr with the operands of every
`dot_general` and `conv_general_dilated` that does not ask for more than DEFAULT rounded
to bfloat16 first, and counts them, so a test can see both what default precision does to
a computation and whether the computation depends on it at all.
"""

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jex_core

ROUNDED = ("dot_general", "conv_general_dilated")
CALLS = ("pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
         "custom_vjp_call_jaxpr", "remat", "checkpoint")


def _default_precision(precision) -> bool:
  if precision is None:
    return True
  pair = precision if isinstance(precision, tuple) else (precision, precision)
  return all(p in (None, lax.Precision.DEFAULT) for p in pair)


def _round(x):
  if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype == jnp.float32:
    return x.astype(jnp.bfloat16).astype(jnp.float32)
  return x


def _sub_jaxpr(params):
  for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
    value = params.get(key)
    if value is not None:
      return value
  return None


def _eval(jaxpr, consts, args, counter):
  env = {}

  def read(v):
    return v.val if isinstance(v, jex_core.Literal) else env[v]

  for v, x in zip(jaxpr.constvars, consts):
    env[v] = x
  for v, x in zip(jaxpr.invars, args):
    env[v] = x
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    name = eqn.primitive.name
    sub = _sub_jaxpr(eqn.params) if name in CALLS else None
    if sub is not None:
      closed = sub if hasattr(sub, "jaxpr") else jex_core.ClosedJaxpr(sub, ())
      outs = _eval(closed.jaxpr, closed.consts, invals, counter)
    elif name in ROUNDED and _default_precision(eqn.params.get("precision")):
      counter[name] = counter.get(name, 0) + 1
      params = dict(eqn.params, precision=lax.Precision.HIGHEST)
      outs = eqn.primitive.bind(*[_round(x) for x in invals], **params)
    else:
      outs = eqn.primitive.bind(*invals, **eqn.params)
    if not eqn.primitive.multiple_results:
      outs = [outs]
    for v, x in zip(eqn.outvars, outs):
      env[v] = x
  return [read(v) for v in jaxpr.outvars]


def emulate(fn):
  """fn as a TPU computes it at default precision; `.rounded` counts the products rounded."""
  def run(*args):
    closed = jax.make_jaxpr(fn)(*args)
    run.rounded = {}
    flat = jax.tree.leaves(args)
    outs = _eval(closed.jaxpr, closed.consts, flat, run.rounded)
    return jax.tree.unflatten(jax.tree.structure(jax.eval_shape(fn, *args)), outs)
  run.rounded = {}
  return run
