"""Make the mesh files in data/meshes/ from their sources, with gmsh (deterministic):

* ``channel.msh``: ``channel.geo`` meshed in 2D (MSH 4.1), physical curves inlet, outlet, walls,
  obstacle (``conf/pde/channel.yaml``);
* ``bracket.stl``: a block 1 × 1 × 0.5 with a round hole of radius 0.25 through it, its surface
  triangulated at size 0.1 (``conf/pde/bracket.yaml``).

    python experiments/make_meshes.py
"""
from __future__ import annotations

from pathlib import Path

import gmsh

MESHES = Path(__file__).resolve().parent.parent / "data" / "meshes"


def channel() -> None:
    gmsh.open(str(MESHES / "channel.geo"))
    gmsh.model.mesh.generate(2)
    gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
    gmsh.write(str(MESHES / "channel.msh"))


def bracket(size: float = 0.1) -> None:
    gmsh.model.add("bracket")
    occ = gmsh.model.occ
    block = occ.addBox(0, 0, 0, 1, 1, 0.5)
    hole = occ.addCylinder(0.5, 0.5, -0.1, 0, 0, 0.7, 0.25)
    occ.cut([(3, block)], [(3, hole)])
    occ.synchronize()
    gmsh.option.setNumber("Mesh.MeshSizeMin", size)
    gmsh.option.setNumber("Mesh.MeshSizeMax", size)
    gmsh.model.mesh.generate(2)  # the surface only: an STL holds triangles
    gmsh.option.setNumber("Mesh.Binary", 1)
    gmsh.write(str(MESHES / "bracket.stl"))


if __name__ == "__main__":
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 0)
    try:
        channel()
        bracket()
    finally:
        gmsh.finalize()
    for name in ("channel.msh", "bracket.stl"):
        print(MESHES / name, (MESHES / name).stat().st_size, "bytes")
