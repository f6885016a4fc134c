// A 2D part for the "geometry from files" guide (docs/guide/geometry.md): a channel
// [0, 2] × [0, 1] with a round obstacle of radius 0.2 at (0.6, 0.5). Its boundary pieces are
// the physical curves: inlet (x = 0), outlet (x = 2), walls (y = 0 and y = 1) and obstacle.
// channel.msh is this file meshed by experiments/make_meshes.py (gmsh, MSH 4.1).
lc = 0.05;       // element size on the outer walls
lo = 0.02;       // and on the obstacle: its polygon lies within 2.5e-4 of the circle
Point(1) = {0, 0, 0, lc};
Point(2) = {2, 0, 0, lc};
Point(3) = {2, 1, 0, lc};
Point(4) = {0, 1, 0, lc};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Point(5) = {0.6, 0.5, 0, lo};
Point(6) = {0.8, 0.5, 0, lo};
Point(7) = {0.6, 0.7, 0, lo};
Point(8) = {0.4, 0.5, 0, lo};
Point(9) = {0.6, 0.3, 0, lo};
Circle(5) = {6, 5, 7};
Circle(6) = {7, 5, 8};
Circle(7) = {8, 5, 9};
Circle(8) = {9, 5, 6};
Curve Loop(1) = {1, 2, 3, 4};
Curve Loop(2) = {5, 6, 7, 8};
Plane Surface(1) = {1, 2};
Physical Curve("inlet") = {4};
Physical Curve("outlet") = {2};
Physical Curve("walls") = {1, 3};
Physical Curve("obstacle") = {5, 6, 7, 8};
Physical Surface("fluid") = {1};
