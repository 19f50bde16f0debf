"""Lowers every family's train step and its sampling or translation function for TPU and for
GPU (CUDA) on a mesh of 8 host devices, with the default implementation ("auto") as the
training loop builds it there (the platform known), and for the first family also with no
platform named (both forms traced, one kept at lowering); prints what the StableHLO holds
as one JSON line (tests/implementation_test.py reads it).

Run with `--xla_force_host_platform_device_count=8` in XLA_FLAGS, from tests/.
"""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np

from family_cases import CASES, case
from jaxgan import families, train

PLATFORMS = ("tpu", "cuda")


def _rank(tensor_type: str) -> int:
  return len(tensor_type.split("x")) - 1  # "6272x64xf32" -> 2, "f32" -> 0


def inspect(text: str) -> dict:
  products = re.findall(r"stablehlo\.dot_general .*?: \(tensor<([^>]*)>, tensor<([^>]*)>\)", text)
  return {"convolution": text.count("stablehlo.convolution"),
          "dot_general": len(products),
          "vector_products": sum(min(_rank(a), _rank(b)) <= 1 for a, b in products),
          "callbacks": sorted({t for t in re.findall(r"custom_call @(\w+)", text)
                               if "callback" in t})}


def abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), tree)


def stored_leaves(state):
  """(path, leaf) of the parameters, batch statistics and optimizer states."""
  return [(jax.tree_util.keystr(p), x) for p, x in jax.tree_util.tree_flatten_with_path(state)[0]
          if re.search(r"params|batch_stats|opt_state", jax.tree_util.keystr(p))]


def sampling_functions(family, config, state, batch):
  """{name: (function, abstract args)}: what the family draws or translates images with."""
  key = jax.random.PRNGKey(0)
  if config.family in ("gan", "ddpm"):
    inputs = jax.eval_shape(lambda k: family.fixed_inputs(k, 8), key)
    return {"generate": (family.generate, (state, inputs))}
  if config.family == "pix2pix":
    images = batch["input"]
    rngs = jax.ShapeDtypeStruct((images.shape[0], *key.shape), key.dtype)
    return {"translate": (family.translate, (state, images, rngs))}
  if config.family == "cyclegan":
    images = batch["A"]
    return {f"translate_{d}": (lambda s, x, d=d: family.translate(s, x, direction=d),
                               (state, images)) for d in ("AtoB", "BtoA")}
  return {"predict": (family.predict, (state, batch["image"]))}


def lowered(family, config, state, batch, mesh, platforms) -> dict:
  """{platform: {function: `inspect` of its StableHLO}}: the family's step and sampling
  functions, each traced once and lowered for each of `platforms`."""
  step = train.compile_train_step(family, mesh)
  traced = {"train_step": step.trace(state, batch)}
  traced.update({fn_name: jax.jit(fn).trace(*args)
                 for fn_name, (fn, args) in sampling_functions(family, config, state, batch).items()})
  return {platform: {fn_name: inspect(t.lower(lowering_platforms=(platform,)).as_text())
                     for fn_name, t in traced.items()} for platform in platforms}


def main():
  mesh = train.make_mesh()
  out = {"devices": mesh.size, "cases": {}}
  for name in CASES:
    config, batch = case(name, pairs=8)  # a batch the 8 devices divide
    state = jax.eval_shape(families.create(config).init_state, jax.random.PRNGKey(0))
    batch = abstract(batch)
    result = {}
    kernels = [x for p, x in stored_leaves(state)
               if "opt_state" not in p and "ema" not in p and p.endswith("['kernel']")]
    result["conv_kernels"] = sum(x.ndim == 4 for x in kernels)
    result["dense_layers"] = sum(x.ndim == 2 for x in kernels) + (config.family == "ddpm")
    # As the training loop builds it on each platform ("auto" with the platform known).
    for platform in PLATFORMS:
      result.update(lowered(families.create(config, platform), config, state, batch, mesh,
                            (platform,)))
    if name == CASES[0]:  # "auto" with no platform: each layer's forms kept until lowering
      result["auto"] = lowered(families.create(config), config, state, batch, mesh, PLATFORMS)
    out["cases"][name] = result
    if config.family == "classifier":  # the judge computes in float32 only
      continue
    # Mixed precision, as a TPU would run it: what the step stores stays float32.
    bf16 = config.copy_and_resolve_references()
    bf16.dtype = "bfloat16"
    bf16_step = train.compile_train_step(families.create(bf16, "tpu"), mesh)
    bf16_traced = bf16_step.trace(state, batch)
    new_state = bf16_traced.out_info[0]
    result["bfloat16_state_dtypes"] = sorted({str(x.dtype) for _, x in stored_leaves(new_state)
                                              if jnp.issubdtype(x.dtype, jnp.floating)})
    text = bf16_traced.lower(lowering_platforms=("tpu",)).as_text()
    result["bfloat16_step_types"] = sorted(set(re.findall(
        r"stablehlo\.(?:convolution|dot_general)\b.*-> tensor<[\dx]*(bf16|f32)>", text)))
  print(json.dumps(out))


if __name__ == "__main__":
  main()
