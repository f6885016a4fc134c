// PINNacle's Poisson2d-CG domain (conf/pde/poisson2d_cg.yaml) as a gmsh file: the square
// [−1, 1]² minus four disks. Physical curves: square (the four sides) and circles.
// conf/pde/poisson2d_cg_geo.yaml poses the same problem on it; gmsh meshes it when read.
lc = 0.05;       // on the square's sides and inside
lr = 0.002;      // on the circles: the polygon lies within lr²/(8r) ≤ 5e-6 of each circle
Point(1) = {-1, -1, 0, lc};
Point(2) = {1, -1, 0, lc};
Point(3) = {1, 1, 0, lc};
Point(4) = {-1, 1, 0, lc};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Curve Loop(1) = {1, 2, 3, 4};
// Four circles (centre, radius) as in the YAML file, each of four arcs.
cx[] = {0.5, 0.4, -0.2, -0.6};
cy[] = {0.5, -0.4, -0.7, 0.5};
r[] = {0.2, 0.4, 0.1, 0.3};
For i In {0:3}
  c = newp; Point(c) = {cx[i], cy[i], 0, lr};
  p1 = newp; Point(p1) = {cx[i] + r[i], cy[i], 0, lr};
  p2 = newp; Point(p2) = {cx[i], cy[i] + r[i], 0, lr};
  p3 = newp; Point(p3) = {cx[i] - r[i], cy[i], 0, lr};
  p4 = newp; Point(p4) = {cx[i], cy[i] - r[i], 0, lr};
  a1 = newc; Circle(a1) = {p1, c, p2};
  a2 = newc; Circle(a2) = {p2, c, p3};
  a3 = newc; Circle(a3) = {p3, c, p4};
  a4 = newc; Circle(a4) = {p4, c, p1};
  arcs[] += {a1, a2, a3, a4};
  loop = newcl; Curve Loop(loop) = {a1, a2, a3, a4};
  loops[] += {loop};
EndFor
Plane Surface(1) = {1, loops[]};
// Sizes grow from lr on the circles to lc at 0.2 from them (a graded mesh, its polygon as fine).
Field[1] = Distance;
Field[1].CurvesList = {arcs[]};
Field[1].Sampling = 400;
Field[2] = Threshold;
Field[2].InField = 1;
Field[2].SizeMin = lr;
Field[2].SizeMax = lc;
Field[2].DistMin = 0;
Field[2].DistMax = 0.2;
Background Field = 2;
Mesh.MeshSizeExtendFromBoundary = 0;
Mesh.MeshSizeFromPoints = 0;
Mesh.MeshSizeFromCurvature = 0;
Physical Curve("square") = {1, 2, 3, 4};
Physical Curve("circles") = {arcs[]};
Physical Surface("domain") = {1};
