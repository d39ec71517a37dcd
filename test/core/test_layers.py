"""Architecture rule: the core's layers import one way, and no module imports itself back.

The layers, lowest first, are listed in ``refersplat_ros/core/__init__.py`` and in
docs/ARCHITECTURE.md. A module may import its own layer and lower ones; every import counts,
including those inside functions (a function-level import hides a cycle, it does not remove it).
Modules of one layer may use each other, but the module graph of the whole core has no cycle.
"""
import ast
from pathlib import Path

from helpers.ros_harness import REPO_ROOT

CORE = REPO_ROOT / 'refersplat_ros' / 'core'
PREFIX = 'refersplat_ros.core'
#: Lowest first. Root modules (``errors``, ``devices``, ``files``) form the base layer.
LAYERS = (('errors', 'devices', 'files'), ('scene',), ('render',), ('reconstruct',), ('text',),
          ('field',),
          ('datasets',), ('labels',), ('runs',), ('language',),
          ('inference',), ('train',), ('evaluate',))
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
#: Sub-packages of a layer, lowest first: the Ref-Synth generator writes and re-reads the
#: Ref-LERF layout, and the Ref-LERF reader never needs the generator.
SUBLAYERS = {'datasets': ('reflerf', 'ref_synth')}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def core_imports(path: Path, package: str):
    """Every ``refersplat_ros.core.*`` module a source file imports (any depth, any place)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: resolve against the importing package
                parent = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parent + ([base] if base else []))
            names = [base] + [f'{base}.{alias.name}' for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == PREFIX or n.startswith(PREFIX + '.'))
    return found


def layer_of(module: str):
    rest = module[len(PREFIX):].lstrip('.')
    return rest.split('.')[0] if rest else None


def graph():
    sources = {module_name(p): p for p in CORE.rglob('*.py')}
    edges = {}
    for name, path in sources.items():
        package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
        edges[name] = {m for m in core_imports(path, package) if m in sources and m != name}
    return sources, edges


def test_every_core_folder_and_root_module_has_a_layer():
    sources, _ = graph()
    unplaced = sorted({layer_of(m) for m in sources} - set(LEVEL) - {None})
    assert unplaced == [], f'add {unplaced} to LAYERS (and to docs/ARCHITECTURE.md)'


def sublayer_of(module: str):
    parts = module[len(PREFIX):].lstrip('.').split('.')
    return parts[1] if len(parts) > 1 and parts[1] in SUBLAYERS.get(parts[0], ()) else None


def test_every_sub_package_has_a_place():
    sources, _ = graph()
    unplaced = sorted({m for m in sources if layer_of(m) in SUBLAYERS and m.count('.') > 3
                       and sublayer_of(m) is None})
    assert unplaced == [], 'add their folders to SUBLAYERS (and to docs/ARCHITECTURE.md)'


def test_sub_packages_import_downwards_only():
    _, edges = graph()
    upward = [f'{a} -> {b}' for a, targets in edges.items() for b in targets
              if layer_of(a) == layer_of(b) and sublayer_of(a) and sublayer_of(b)
              and SUBLAYERS[layer_of(a)].index(sublayer_of(b))
              > SUBLAYERS[layer_of(a)].index(sublayer_of(a))]
    assert upward == []


def test_layers_import_downwards_only():
    sources, edges = graph()
    upward = [f'{a} -> {b}' for a, targets in edges.items() for b in targets
              if layer_of(a) and layer_of(b) and LEVEL[layer_of(b)] > LEVEL[layer_of(a)]]
    assert upward == []


def test_core_import_graph_has_no_cycle():
    _, edges = graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 'open':
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 'done'

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_rule_catches_an_upward_import(tmp_path):
    source = tmp_path / 'bad.py'
    source.write_text('def f():\n    from refersplat_ros.core.train.trainer import train\n')
    imported = core_imports(source, 'refersplat_ros.core.scene')
    assert imported == {'refersplat_ros.core.train.trainer',
                        'refersplat_ros.core.train.trainer.train'}
    assert LEVEL[layer_of('refersplat_ros.core.train.trainer')] > LEVEL['scene']
