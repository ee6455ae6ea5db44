"""The type stubs describe the module as it is: the same names, methods and signatures."""

import ast
import inspect
import pathlib

import fdbfaces

STUBS = pathlib.Path(fdbfaces.__file__).with_name("__init__.pyi")


def stub_tree():
    return ast.parse(STUBS.read_text())


def test_the_stubs_name_every_public_name():
    tree = stub_tree()
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    public = {name for name in dir(fdbfaces) if not name.startswith("_") and callable(getattr(fdbfaces, name))}
    public -= {"atexit", "os", "tempfile", "threading"}  # modules __init__.py imports
    assert public == stubbed


def test_the_stubs_give_each_method_its_parameters():
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef) or node.name.endswith("Error"):
            continue
        cls = getattr(fdbfaces, node.name)
        for item in node.body:
            if not isinstance(item, ast.FunctionDef) or item.name.startswith("__"):
                continue
            member = getattr(cls, item.name)
            if isinstance(member, property) or not callable(member):
                continue  # a getter: its type is in the stub, there are no parameters
            stub_params = [a.arg for a in item.args.args + item.args.kwonlyargs if a.arg != "self"]
            real = [p for p in inspect.signature(member).parameters if p not in ("self", "$self")]
            assert stub_params == real, f"{node.name}.{item.name}"
            assert member.__doc__, f"{node.name}.{item.name} has no docstring"
    init = [a.arg for a in next(
        f for c in stub_tree().body if isinstance(c, ast.ClassDef) and c.name == "FaceDb"
        for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    ).args.kwonlyargs]
    assert init == [p for p in inspect.signature(fdbfaces.FaceDb).parameters][1:]
