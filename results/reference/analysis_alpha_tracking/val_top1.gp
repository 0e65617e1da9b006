# analysis/alpha_tracking: validation top1: render with `gnuplot val_top1.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "val_top1.png"
set title "analysis/alpha_tracking: validation top1"
set xlabel "epoch"
set ylabel "top1"
set key bottom right
set grid

plot "val_top1.dat" index 0 using 1:3:4 with filledcurves lc 1 fs transparent solid 0.2 notitle, \
     "val_top1.dat" index 0 using 1:2 with lines lw 2 lc 1 title "ViT-64x4/p4 DyT, Fashion-MNIST: DyT (n=1)"
set terminal svg size 960,600 noenhanced dynamic
set output "val_top1.svg"
replot
