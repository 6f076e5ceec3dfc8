"""The `kolm` command line: thin commands that parse, call one core function, and render.

Heavy modules (pydantic models, rich, any toolchain) are imported inside commands so that
`kolm --help` stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kolm import __version__
from kolm.platforms import PLATFORMS


class KolmGroup(click.Group):
    """Turns a `KolmError` into one line on stderr and its exit code, and any other exception (a
    toolchain failing in a way its plugin did not foresee) into one line and exit code 7
    (`--debug`: the traceback)."""

    def invoke(self, ctx: click.Context):
        from kolm.errors import BackendError, KolmError

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KolmError as exc:
            if ctx.meta.get("kolm.debug"):
                raise
            click.echo(f"kolm: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if ctx.meta.get("kolm.debug"):
                raise
            reason = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(f"kolm: error: unexpected {type(exc).__name__}: {reason} (--debug shows where)", err=True)
            ctx.exit(BackendError.exit_code)


def loaded():
    """The plugin registry, after one warning line on stderr per refused plugin or contested backend."""
    from kolm.plugins import registry

    reg = registry()
    for problem in reg.problems:
        click.echo(f"kolm: warning: {problem}", err=True)
    return reg


CONTEXT_HELP = "Fit with the KV cache of this many tokens (f16) instead of the flat 1 GB runtime allowance."
RECIPE_HELP = "The backend's recipe for the tier, by name (default: its measured best; `kolm plugins` lists them)."
# kolm.devices.DeviceKind but the browser, spelled here so that `kolm --help` imports no pydantic (tested equal).
KINDS = ["sbc", "phone", "laptop", "desktop", "desktop-gpu", "edge-gpu"]


def own_device_options(command):
    """--device-file, --bandwidth and --kind: forecast a device no plugin lists (`--memory` too)."""
    command = click.option(
        "--kind",
        type=click.Choice(KINDS),
        default="desktop",
        show_default=True,
        help="With --bandwidth: the class of device, whose throughput calibration applies.",
    )(command)
    command = click.option(
        "--bandwidth", "bandwidth_gbps", type=float, help="Your device's memory bandwidth, GB/s (with --memory)."
    )(command)
    return click.option(
        "--device-file",
        type=click.Path(path_type=Path),
        help="Your device as a JSON row (the schema of `kolm schema devices`); kept for later --target.",
    )(command)


def own_device(reg, name: str | None, device_file: Path | None, bandwidth_gbps, memory_gb, kind):
    """The device the user describes (`--device-file`, or `--bandwidth` and `--memory` named by
    `--target`), saved in $KOLM_HOME/devices/ so `--target` finds it later; None if they describe none."""
    from kolm.devices import read_device_file, save_user_row
    from kolm.errors import UsageError

    if device_file is not None and bandwidth_gbps is not None:
        raise UsageError("give your device as --device-file or as --bandwidth and --memory, not both")
    if device_file is not None:
        row = read_device_file(device_file)
    elif bandwidth_gbps is not None:
        if memory_gb is None or name is None or bandwidth_gbps <= 0 or memory_gb <= 0:
            raise UsageError("--bandwidth needs --memory (both above 0) and a name for the device: --target NAME")
        row = reg.custom_device(name, bandwidth_gbps, memory_gb, kind)
    else:
        return None
    path = save_user_row(row)
    click.echo(f"kolm: saved {row.name} as your own device ({path}); later: --target {row.slug}", err=True)
    return row


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def console():
    from rich.console import Console

    return Console(highlight=False)


@click.group(cls=KolmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kolm")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """kolm: take a small language model from a .kolm artifact to a verified edge deployment.

    \b
    Pick a device and tier before converting anything:
      kolm pick SmolLM2-135M-Instruct
      kolm export model.kolm --target raspberry-pi-5 --quant int4 --preview
    """
    ctx.meta["kolm.debug"] = debug


@cli.command()
@click.option("--here", is_flag=True, help="Profile this machine (OS, CPU, memory, a measured bandwidth) as a device.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def devices(here: bool, as_json: bool) -> None:
    """List the device table merged from every installed plugin, with sources, and this machine's
    row once profiled (`--here`, or the first `kolm bench`).

    \b
    Examples:
      kolm devices --json
      kolm devices --here
    """
    if here:
        from kolm.host import this_machine

        reg = loaded()
        host = this_machine(refresh=True)
        row = reg.host_device(host)
        if as_json:
            return emit_json({"host": host.model_dump(), "device": row.model_dump(mode="json")})
        from kolm.render import host_report

        return console().print(host_report(host, row))
    table = loaded().devices()
    if as_json:
        return emit_json([row.model_dump(mode="json") for row in table.rows])
    from kolm.render import device_table

    console().print(device_table(table.rows))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List loaded plugins: versions, hooks, backends and whether each toolchain imports.

    \b
    Example:
      KOLM_LOAD_PLUGINS=kolm-gguf kolm plugins --json
    """
    from kolm.plugins import registry

    rows = registry().describe()
    if as_json:
        return emit_json([row.model_dump() for row in rows])
    from kolm.render import plugin_table

    console().print(plugin_table(rows))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bases(as_json: bool) -> None:
    """List the reference bases that forecasts accept by name (no weights needed).

    \b
    Examples:
      kolm bases --json
      kolm export Llama-3.1-8B --target rtx-4090 --quant int4 --preview
    """
    from kolm.modelspec import reference_bases, resolve_model

    rows = []
    for b in reference_bases():
        spec = resolve_model(b.name)
        rows.append(
            {
                "name": b.name,
                "aliases": b.aliases,
                "params": spec.inventory.params,
                "active_params": spec.active_params,
                "source": b.source,
            }
        )
    if as_json:
        return emit_json(rows)
    from kolm.render import base_table

    console().print(base_table(rows))


@cli.command()
@click.argument("name", default="rs1", type=click.Choice(["rs1", "backend", "devices", "throughput"]))
def schema(name: str) -> None:
    """Print a JSON Schema: the RS-1 manifest (default), or a plugin's data file
    (backend.json, devices.json, throughput.json).

    \b
    Examples:
      kolm schema > rs1.schema.json
      kolm schema devices > devices.schema.json
    """
    if name == "rs1":
        from kolm.manifest import rs1_json_schema

        return emit_json(rs1_json_schema())
    from kolm.plugin_data import json_schema

    emit_json(json_schema(name))


@cli.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("--from-gguf", "gguf", type=click.Path(path_type=Path), help="Import a GGUF instead of a folder.")
@click.option(
    "--eval",
    "eval_pack",
    type=click.Path(path_type=Path),
    help="Eval pack (JSONL); default: $KOLM_EVAL_PACK, else kolm's own.",
)
@click.option("--base", help="Base model name for the manifest (default: the model's own name).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The .kolm to write.")
@click.option("--license", "license_", default="unspecified", show_default=True, help="License of the weights.")
@click.option("--min-k", default=0.85, show_default=True, help="Compile gate: refuse an fp16 K below this.")
def pack(
    folder: Path | None,
    gguf: Path | None,
    eval_pack: Path | None,
    base: str | None,
    output: Path,
    license_: str,
    min_k: float,
) -> None:
    """Pack a Hugging Face folder (safetensors only), or import a GGUF, into a .kolm.

    The fp16 K-score is measured on the eval pack when an installed backend can run here
    (kolm-gguf), and packing is refused below --min-k.

    \b
    Examples:
      kolm pack ./SmolLM2-135M-Instruct --base SmolLM2-135M-Instruct -o smol.kolm
      kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf -o smol.kolm
    """
    from kolm.errors import UsageError
    from kolm.evalpack import default_eval_pack
    from kolm.pack import pack_folder, pack_import
    from kolm.render import progress_bar

    eval_pack = eval_pack or default_eval_pack()
    if (folder is None) == (gguf is None):
        raise UsageError("give either a model FOLDER or --from-gguf FILE")
    if gguf is not None:
        manifest, k = pack_import(loaded(), gguf, eval_pack, base, output, license_, progress_bar, min_k)
    else:
        manifest, k = pack_folder(
            folder, eval_pack, base or folder.resolve().name, output, license_, progress_bar, loaded(), min_k
        )
    click.echo(
        f"wrote {output}: {manifest.base}, {manifest.params:,} params, {len(manifest.payload)} files, "
        f"{manifest.eval_pack.items} eval items, K {k}"
    )


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(artifact: Path, as_json: bool) -> None:
    """Show a .kolm's manifest and tensor inventory (count, params, bytes per dtype).

    \b
    Example:
      kolm inspect smol.kolm --json
    """
    from kolm.artifact import Artifact

    with Artifact(artifact) as art:
        manifest, inventory = art.manifest, art.inventory()
    summary = {
        "manifest": manifest.model_dump(mode="json", by_alias=True),
        "tensors": {
            "count": len(inventory.tensors),
            "params": inventory.params,
            "dtype_bytes": inventory.dtype_bytes(),
        },
    }
    if as_json:
        return emit_json(summary)
    from kolm.render import inspect_report

    console().print(inspect_report(artifact, manifest, inventory))


@cli.command()
@click.argument("model")
@click.option("--target", "-t", help="Only this device (name or alias); with --bandwidth, your device's name.")
@click.option("--quant", "-q", help="Only this tier: fp16, int8, int4, int3.")
@click.option("--memory", "memory_gb", type=float, help="With --bandwidth: your device's memory, GB.")
@click.option("--context", type=click.IntRange(min=1), help=CONTEXT_HELP)
@click.option("--recipe", help=RECIPE_HELP)
@own_device_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def pick(
    model: str,
    target: str | None,
    quant: str | None,
    memory_gb: float | None,
    context: int | None,
    recipe: str | None,
    device_file: Path | None,
    bandwidth_gbps: float | None,
    kind: str,
    as_json: bool,
) -> None:
    """Forecast every device × tier for MODEL: size, tokens/s, K-loss, fit, backend.

    MODEL is a .kolm, a config.json, a Hugging Face folder or a known base (`kolm bases`).
    Nothing is converted and no toolchain is imported. A device no plugin lists: give its
    numbers (--bandwidth, --memory, --kind) or a JSON row (--device-file).

    \b
    Examples:
      kolm pick SmolLM2-135M-Instruct
      kolm pick model.kolm --target "RTX 4090" --json
      kolm pick Qwen2.5-0.5B --target my-n100 --bandwidth 38.4 --memory 16 --kind desktop
    """
    from kolm.errors import UsageError
    from kolm.forecast import pick as pick_all
    from kolm.modelspec import resolve_model
    from kolm.quant import TIERS, parse_tier

    reg = loaded()
    if memory_gb is not None and bandwidth_gbps is None:
        raise UsageError("--memory on pick describes your own device: give --bandwidth too")
    own = own_device(reg, target, device_file, bandwidth_gbps, memory_gb, kind)
    devices_ = [own] if own else [reg.device(target)] if target else reg.devices().rows
    tiers = (parse_tier(quant),) if quant else TIERS
    rows = pick_all(reg, resolve_model(model), devices_, tiers, context, recipe)
    if as_json:
        return emit_json([row.model_dump() for row in rows])
    from kolm.render import pick_table

    console().print(pick_table(rows))


@cli.command()
@click.argument("model")
@click.option("--target", "-t", help="Device name or alias (see `kolm devices`); with --bandwidth, your device's name.")
@click.option("--quant", "-q", required=True, help="Tier: fp16, int8, int4 (Q4_K_M) or int3 (Q3_K_S).")
@click.option("--backend", "-b", help="Backend (default: the device's recommended one).")
@click.option("--memory", "memory_gb", type=float, help="Device memory in GB if not the row's default.")
@click.option("--context", type=click.IntRange(min=1), help=CONTEXT_HELP)
@click.option("--recipe", help=RECIPE_HELP)
@own_device_options
@click.option(
    "--preview", is_flag=True, help="Only forecast, and print the four steps; convert nothing (no toolchain needed)."
)
@click.option("--login", help="With --preview: the device's ssh login (user@host) for the copy step.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output folder of the export.")
@click.option("--check", is_flag=True, help="Re-export and compare with the existing output: same bytes?")
@click.option("--max-k-drop", default=5.0, show_default=True, help="Fail if K drops more points than this vs fp16.")
@click.option("--allow-drop", is_flag=True, help="Export even if K drops beyond --max-k-drop.")
def export(
    model: str,
    target: str | None,
    quant: str,
    backend: str | None,
    memory_gb: float | None,
    context: int | None,
    recipe: str | None,
    device_file: Path | None,
    bandwidth_gbps: float | None,
    kind: str,
    preview: bool,
    login: str | None,
    as_json: bool,
    output: Path | None,
    check: bool,
    max_k_drop: float,
    allow_drop: bool,
) -> None:
    """Export MODEL for a device and tier; with --preview, print the forecast and the four steps
    (export here, copy to the device, run there, verify here) without converting anything.

    \b
    Examples:
      kolm export Llama-3.1-8B --target raspberry-pi-5 --quant int4 --preview --json
      kolm export smol.kolm --target raspberry-pi-5 --quant int4 --preview --login pi@raspberrypi.local
      kolm export smol.kolm --target raspberry-pi-5 --quant int4 -o out/
      kolm export smol.kolm --target raspberry-pi-5 --quant int4 -o out/ --check
      kolm export smol.kolm --target my-box --bandwidth 68 --memory 16 --quant int4 --preview
    """
    from kolm.errors import UsageError
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.quant import parse_tier

    reg = loaded()
    tier = parse_tier(quant)
    device = own_device(reg, target, device_file, bandwidth_gbps, memory_gb, kind)
    if device is None and target is None:
        raise UsageError("name the device: --target NAME (see kolm devices), or describe yours with --device-file")
    device = device or reg.device(target)
    spec = resolve_model(model)
    result = forecast(reg, spec, device, tier, backend, memory_gb, context, recipe)
    if preview:
        from kolm.steps import declared, deployment_steps, preview_json

        steps = deployment_steps(result, spec, device, login, backend=declared(reg, result))
        if as_json:
            return emit_json(preview_json(result, steps))
        from kolm.render import forecast_report, steps_text

        console().print(forecast_report(result))
        return click.echo(steps_text(steps))
    from kolm.export import export_artifact
    from kolm.render import export_report, progress_bar
    from kolm.steps import out_dir

    if spec.origin != "artifact":
        raise UsageError(f"export needs a .kolm artifact; {model} is a {spec.origin} (add --preview to forecast)")
    out = output or Path(out_dir(spec, device, tier))
    if check:
        from kolm.export import check_reproducible

        repro = check_reproducible(reg, Path(model), device, tier, result.backend, out, progress_bar)
        if as_json:
            emit_json(repro.model_dump())
        else:
            click.echo(f"{out}: re-export gives {'the same bytes' if repro.same else 'DIFFERENT bytes'}")
            for line in repro.differences + repro.lockfile_differences:
                click.echo(f"  {line}")
        sys.exit(0 if repro.same else 1)
    record = export_artifact(
        reg,
        Path(model),
        device,
        tier,
        result.backend,
        out,
        result.size_bytes,
        result.read_per_token_bytes,
        steps=progress_bar,
        max_drop_points=None if allow_drop else max_k_drop,
        recipe_name=result.recipe,
    )
    if as_json:
        return emit_json(record.model_dump(mode="json", by_alias=True))
    console().print(export_report(out, record, reg.backend(result.backend).declared.device_run))


@cli.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--prompt", "-p", help="Prompt (default: read standard input).")
@click.option("--raw", is_flag=True, help="Send the prompt as is, without the chat template.")
@click.option("--max-tokens", "-n", default=256, show_default=True, help="Tokens to generate at most.")
@click.option("--port", type=int, help="Serve an OpenAI-compatible API on this port instead.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the server binds.")
@click.option("--threads", type=int, help="CPU threads (default: all cores).")
@click.option("--ctx", "n_ctx", default=2048, show_default=True, help="Context length in tokens.")
def run(
    export_dir: Path,
    prompt: str | None,
    raw: bool,
    max_tokens: int,
    port: int | None,
    host: str,
    threads: int | None,
    n_ctx: int,
) -> None:
    """Generate from an export (greedy, streamed to stdout), or serve it with --port.

    \b
    Examples:
      kolm run SmolLM2-135M-Instruct-raspberry-pi-5-int4 --prompt "The capital of France is"
      kolm run SmolLM2-135M-Instruct-raspberry-pi-5-int4 --port 8080
      curl localhost:8080/v1/chat/completions -d '{"messages":[{"role":"user","content":"Hi"}]}'
    """
    from kolm.record import load_record, open_session
    from kolm.server import port_free

    folder, record = load_record(export_dir)
    session = open_session(loaded(), folder, record, n_ctx=n_ctx, threads=threads)
    if port is not None:
        port_free(host, port)
        sys.exit(session.serve(host, port, record.manifest.base))
    text = prompt if prompt is not None else sys.stdin.read()
    with session:
        for piece in session.generate(text, max_tokens=max_tokens, stream=True, chat=not raw):
            click.echo(piece, nl=False)
    click.echo()


@cli.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 exposes it).")
@click.option(
    "--verify",
    "verify",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A .kolm the browser page offers to verify in the tab (browser bundles only).",
)
@click.option("--threads", type=int, help="CPU threads (default: all cores).")
@click.option("--ctx", "n_ctx", default=2048, show_default=True, help="Context length in tokens.")
def serve(export_dir: Path, port: int, host: str, verify: Path | None, threads: int | None, n_ctx: int) -> None:
    """Serve an export on 127.0.0.1 until Ctrl-C: a browser bundle's page (with --verify, its
    in-tab verification of ART.kolm), otherwise the OpenAI-compatible API.

    \b
    Examples:
      kolm serve SmolLM2-135M-Instruct-browser-int4            # open the printed URL, click Run
      kolm serve SmolLM2-135M-Instruct-browser-int4 --verify SmolLM2-135M-Instruct.kolm
      kolm serve SmolLM2-135M-Instruct-raspberry-pi-5-int4 --port 8081   # same as kolm run --port
    """
    from kolm.record import load_record, open_session
    from kolm.server import port_free

    folder, record = load_record(export_dir)
    session = open_session(loaded(), folder, record, n_ctx=n_ctx, threads=threads)
    port_free(host, port)
    sys.exit(session.serve(host, port, record.manifest.base, verify))


@cli.command()
@click.option("--port", default=8765, show_default=True, help="Port to listen on (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 exposes it).")
@click.option("--no-open", is_flag=True, help="Do not open a browser tab.")
@click.option(
    "--matrix",
    "matrix_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also show this `kolm matrix` results folder's report at /matrix/ (as it stands at each reload).",
)
def ui(port: int, host: str, no_open: bool, matrix_dir: Path | None) -> None:
    """Serve the picker page on 127.0.0.1 and open it: choose a model, a tier and a device, and
    see the forecast, every device × tier at a glance, and the four commands to run. The docs
    and the pages plugins add (the browser bundle's /verify) are linked from it. Offline; nothing
    leaves this machine.

    \b
    Examples:
      kolm ui
      kolm ui --port 0 --no-open
      kolm ui --matrix results/          # the picker, and results/'s matrix report at /matrix/
    """
    from kolm.server import port_free
    from kolm.ui import serve_ui

    if port:
        port_free(host, port)

    def opened(url: str) -> None:
        if not no_open:
            import webbrowser

            webbrowser.open(url)

    sys.exit(serve_ui(loaded(), host, port, opened, matrix_dir))


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "--device", "-d", help="Log the run as this device (checked against this machine); default: this machine."
)
@click.option("--trust-device", is_flag=True, help="Log it as --device even where this machine contradicts it.")
@click.option("--quant", "-q", default="int4", show_default=True, help="Tier, when TARGET is a .kolm to export.")
@click.option("--n-prompt", default=512, show_default=True, help="Prompt tokens (pp).")
@click.option("--n-gen", default=128, show_default=True, help="Generated tokens (tg).")
@click.option("--repetitions", "-r", default=3, show_default=True, help="Runs of each test.")
@click.option("--threads", type=int, help="CPU threads (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench(
    target: Path,
    device: str | None,
    trust_device: bool,
    quant: str,
    n_prompt: int,
    n_gen: int,
    repetitions: int,
    threads: int | None,
    as_json: bool,
) -> None:
    """Measure an export on this machine (pp and tg tok/s, load time, peak RSS) beside the
    forecast for this machine, or for --device when this machine is one; the result is logged with
    this machine's profile, and later forecasts for that device use it.

    \b
    Examples:
      kolm bench SmolLM2-135M-Instruct-raspberry-pi-5-int4
      kolm bench smol.kolm --quant int8 --json
      kolm bench SmolLM2-135M-Instruct-raspberry-pi-5-int4 --device raspberry-pi-5   (on a Pi 5)
    """
    from kolm.bench import run_bench
    from kolm.quant import parse_tier
    from kolm.render import bench_report, progress_bar

    report = run_bench(
        loaded(), target, device, trust_device, parse_tier(quant), n_prompt, n_gen, repetitions, threads, progress_bar
    )
    if as_json:
        return emit_json(report.model_dump(mode="json"))
    console().print(bench_report(report))


def comma_list(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """`--opt a,b --opt c` -> [a, b, c]."""
    return [item.strip() for v in value for item in v.split(",") if item.strip()]


@cli.command()
@click.option(
    "--models", "-m", required=True, multiple=True, callback=comma_list, help="The .kolm artifacts, comma-separated."
)
@click.option(
    "--targets",
    "-t",
    required=True,
    multiple=True,
    callback=comma_list,
    help="Device names (kolm devices), comma-separated.",
)
@click.option(
    "--quant", "-q", required=True, multiple=True, callback=comma_list, help="Tiers, comma-separated (int8,int4)."
)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), default="matrix", show_default=True, help="Results folder."
)
@click.option(
    "--address", help="An existing Ray cluster (ray://HOST:PORT, or auto); default: a local Ray started here."
)
@click.option("--cpus", type=int, help="CPUs of the local Ray (default: every core); one cell a CPU.")
@click.option("--serial", is_flag=True, help="Run the cells one after another in this process, without Ray.")
@click.option("--plan", "plan_only", is_flag=True, help="Print the cells and their forecasts; run nothing.")
@click.option("--retry-failed", is_flag=True, help="Run the cells that failed last time again.")
@click.option(
    "--bench",
    "bench",
    is_flag=True,
    help="Also bench each export (kolm bench) after every export, one at a time per machine: on a Ray node "
    "that is the cell's device where one offers kolm_device_<slug>, else here (or any node); the result "
    "names the machine it ran on.",
)
@click.option("--n-prompt", default=512, show_default=True, help="With --bench: prompt tokens (pp).")
@click.option("--n-gen", default=128, show_default=True, help="With --bench: generated tokens (tg).")
@click.option("--repetitions", "-r", default=3, show_default=True, help="With --bench: runs of each test.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON lines instead of a table.")
def matrix(
    models: list[str],
    targets: list[str],
    quant: list[str],
    output: Path,
    address: str | None,
    cpus: int | None,
    serial: bool,
    plan_only: bool,
    retry_failed: bool,
    bench: bool,
    n_prompt: int,
    n_gen: int,
    repetitions: int,
    as_json: bool,
) -> None:
    """Export and score every model x device x tier: each cell planned from its forecast (those that
    do not fit or that the backend refuses are recorded with the reason), then exported with K and
    fidelity measured, as Ray tasks; results are appended to OUTPUT/cells.jsonl as cells finish, and
    OUTPUT/results.csv, results.parquet and report.html written at the end. Run it again to finish
    what a killed run left: cells with a result for the same inputs are skipped.

    \b
    Examples:
      kolm matrix -m smol.kolm,qwen.kolm -t raspberry-pi-5,browser -q int8,int4 -o results/
      kolm matrix -m smol.kolm -t raspberry-pi-5 -q int8,int4,int3 --plan
      kolm matrix -m smol.kolm -t m3-pro,pixel-8 -q int4 --address ray://head:10001
      kolm matrix -m smol.kolm -t raspberry-pi-5 -q int8,int4 --bench    # run on a Pi 5: its own tok/s
    """
    from kolm import matrix as mx
    from kolm.matrix_report import write_report
    from kolm.render import cell_progress, matrix_table, plan_table

    reg = loaded()
    size = mx.BenchSize(n_prompt=n_prompt, n_gen=n_gen, repetitions=repetitions) if bench else None
    cells = mx.plan(reg, [Path(m) for m in models], targets, quant, size)
    if plan_only:
        if as_json:
            return click.echo("\n".join(c.model_dump_json() for c in cells))
        return console().print(plan_table(cells))
    runner = mx.serially if serial else mx.on_ray(address, cpus)

    with cell_progress("cells") as advance:

        def progress(result: mx.CellResult | None, done: int, total: int) -> None:
            advance(result and f"[{done}/{total}] {result.cell.key}: {mx.describe(result)}", done, total)

        results = mx.run_matrix(cells, output, runner, progress, retry_failed)
    table = mx.rows(results)
    written = [*mx.write_tables(output, table), write_report(output, table)]
    tally = mx.counts(results)
    if as_json:
        click.echo("\n".join(r.model_dump_json() for r in results))
    else:
        console().print(matrix_table(results))
        click.echo(f"{tally['ok']} ran, {tally['failed']} failed, {tally['skipped']} skipped; "
                   + ", ".join(str(p) for p in written))  # fmt: skip
    sys.exit(1 if tally["failed"] else 0)


@cli.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--against", required=True, type=click.Path(path_type=Path), help="The .kolm it was exported from.")
@click.option("--k-tolerance", default=0.0, show_default=True, help="Allowed |K recomputed - K recorded|.")
@click.option("--min-k", default=0.85, show_default=True, help="The gate K must reach.")
@click.option("--max-k-drop", default=5.0, show_default=True, help="Allowed drop vs fp16, in points.")
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
@click.option(
    "--key",
    "public_key",
    type=click.Path(path_type=Path),
    help="Also check EXPORT_DIR/kolm.sig (kolm sign) with this EC public key, PEM; for a "
    "certificate-signed export, the CA certificate(s) it must chain to.",
)
def verify(
    export_dir: Path,
    against: Path,
    k_tolerance: float,
    min_k: float,
    max_k_drop: float,
    as_json: bool,
    public_key: Path | None,
) -> None:
    """Run the six checks on an export; exit 0 only if all pass.

    \b
    1 manifest valid RS-1   2 payload SHA-256   3 eval pack hash   4 tier vs tensor types
    5 K recomputed = K recorded   6 K at the gate, drop vs fp16 within tolerance
    7 signature (only with --key): kolm.sig valid and the signed files unchanged

    \b
    Example:
      kolm verify SmolLM2-135M-Instruct-raspberry-pi-5-int4 --against smol.kolm --json
      kolm verify SmolLM2-135M-Instruct-raspberry-pi-5-int4 --against smol.kolm --key signer.pub.pem
    """
    from kolm.render import progress_bar, verify_table
    from kolm.verify import verify_export

    result = verify_export(
        loaded(), export_dir, against, k_tolerance, min_k, max_k_drop, progress_bar, public_key=public_key
    )
    if as_json:
        emit_json(result.model_dump())
    else:
        console().print(verify_table(result))
        for note in result.notes:
            click.echo(f"note: {note}")
    sys.exit(0 if result.passed else 11)


@cli.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "private_key",
    required=True,
    type=click.Path(path_type=Path),
    help="EC private key, PEM, unencrypted (P-256, P-384 or P-521).",
)
@click.option(
    "--cert",
    "certificate",
    type=click.Path(path_type=Path),
    help="Sign as this certificate (PEM) for --key instead of as a bare key.",
)
@click.option(
    "--chain",
    multiple=True,
    type=click.Path(path_type=Path),
    help="With --cert: the CA or intermediate certificate(s) that issued it (PEM; repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def sign(export_dir: Path, private_key: Path, certificate: Path | None, chain: tuple[Path, ...], as_json: bool) -> None:
    """Sign an export, offline, with OpenSSF model-signing: writes EXPORT_DIR/kolm.sig.

    The signature covers exactly kolm-export.json and the payload files it lists (SHA-256 of
    each; the record in turn pins the manifest, K and lockfile). binder.json, kolm.sig itself and
    any other file in the folder are not covered. No network: no Sigstore, OIDC or transparency
    log; `kolm verify --key` checks it. Needs pip install 'kolm-core[signing]'.

    \b
    Example:
      openssl ecparam -name prime256v1 -genkey -noout -out signer.pem
      openssl ec -in signer.pem -pubout -out signer.pub.pem
      kolm sign SmolLM2-135M-Instruct-raspberry-pi-5-int4 --key signer.pem
      kolm verify SmolLM2-135M-Instruct-raspberry-pi-5-int4 --against smol.kolm --key signer.pub.pem
    """
    from kolm.errors import UsageError
    from kolm.signing import sign_export

    if chain and certificate is None:
        raise UsageError("--chain needs --cert")
    signed = sign_export(export_dir, private_key, certificate, chain)
    if as_json:
        return emit_json(signed.model_dump())
    click.echo(f"wrote {signed.signature}: {signed.signer}, over {', '.join(signed.files)}")


@cli.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--against", required=True, type=click.Path(path_type=Path), help="The .kolm it was exported from.")
@click.option(
    "--platform",
    "platform_",
    required=True,
    type=click.Choice(list(PLATFORMS)),
    help="The target's platform: its wheels are fetched for it.",
)
@click.option("--python", "python_version", default="3.11", show_default=True, help="The target's Python (X.Y).")
@click.option(
    "--key", "private_key", required=True, type=click.Path(path_type=Path), help="EC private key (PEM) to sign with."
)
@click.option("--cert", "certificate", type=click.Path(path_type=Path), help="Sign as this certificate for --key.")
@click.option("--chain", multiple=True, type=click.Path(path_type=Path), help="With --cert: its issuer(s) (PEM).")
@click.option(
    "--wheels",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A folder of wheels built for the target (e.g. llama-cpp-python built on a twin of the device), "
    "preferred to the index; repeatable.",
)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The bundle to write (.kolmb).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def bundle(
    export_dir: Path,
    against: Path,
    platform_: str,
    python_version: str,
    private_key: Path,
    certificate: Path | None,
    chain: tuple[Path, ...],
    wheels: tuple[Path, ...],
    output: Path,
    as_json: bool,
) -> None:
    """Bundle an export for a site without a network: one signed file.

    It holds the export, the .kolm it came from, the fp16 reference its fidelity is measured
    against, the wheels of kolm and its backend for --platform and --python (pip download; a
    runtime that ships only as source comes as its sdist, built on the target), install.sh and a
    lock of every file's SHA-256, signed with --key. Needs the network (pip) and
    pip install 'kolm-core[signing]'. At the site: kolm unbundle.

    \b
    Example:
      kolm bundle smol-pi5 --against smol.kolm --platform linux-aarch64 --key signer.pem -o site.kolmb
      kolm unbundle site.kolmb --key signer.pub.pem -o site      # at the site
    """
    from kolm.bundle import make_bundle
    from kolm.errors import UsageError
    from kolm.render import human_bytes, progress_bar

    if chain and certificate is None:
        raise UsageError("--chain needs --cert")
    made = make_bundle(
        loaded(),
        export_dir,
        against,
        platform_,
        python_version,
        output,
        private_key,
        certificate,
        chain,
        wheels,
        progress_bar,
    )
    if as_json:
        return emit_json(made.model_dump())
    click.echo(
        f"wrote {made.bundle} ({human_bytes(made.size)}, {made.files} files, {len(made.wheels)} wheels) "
        f"for {made.platform}, Python {made.python}"
    )
    for build in made.source_builds:
        click.echo(f"built on the target from source: {build.sdist}; it needs {build.needs}")
    click.echo(f"at the site: kolm unbundle {made.bundle} --key PUBLIC_KEY.pem -o DIR")


@cli.command()
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "public_key",
    required=True,
    type=click.Path(path_type=Path),
    help="The signer's EC public key (PEM), or the CA certificate(s) its certificate chains to.",
)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The folder to unpack into.")
@click.option("--python", "python", help="The Python to make the venv with (default: pythonX.Y of the bundle).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def unbundle(bundle_file: Path, public_key: Path, output: Path, python: str | None, as_json: bool) -> None:
    """Check, unpack, install and verify a bundle (kolm bundle), with no network.

    Every byte of the bundle is checked against its signed lock before anything is written; then
    it is unpacked into OUTPUT (all or nothing), kolm is installed into OUTPUT/venv from the
    bundle's wheels only (install.sh: pip install --no-index), and OUTPUT/venv/bin/kolm verify
    checks the export, its signature included. Exits with verify's code (0: all checks passed).
    Run it again after a failed install: the unpacked folder is reused.

    \b
    Example:
      kolm unbundle site.kolmb --key signer.pub.pem -o site
      site/venv/bin/kolm run site/export --prompt "Hello"
    """
    from kolm.bundle import unbundle as run_unbundle
    from kolm.render import progress_bar

    done = run_unbundle(bundle_file, public_key, output, python, progress_bar, as_json)
    if as_json:
        emit_json(done.model_dump())
    else:
        click.echo(f"{'reused' if done.resumed else 'unpacked'} {done.files} files in {done.folder}; kolm: {done.kolm}")
        if done.verify_exit_code == 0:
            click.echo(f"run it: {done.kolm} run {Path(done.folder) / 'export'} --prompt 'Hello'")
    sys.exit(done.verify_exit_code)


def main() -> None:
    cli(prog_name="kolm")


if __name__ == "__main__":
    sys.exit(main())
