# analysis/alpha0_sweep: final top1 vs model.norm.alpha_init (mean over seeds, min-max bars; diverged runs absent): render with `gnuplot sweep_top1.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "sweep_top1.png"
set title "analysis/alpha0_sweep: final top1 vs model.norm.alpha_init (mean over seeds, min-max bars; diverged runs absent)"
set xlabel "model.norm.alpha_init"
set ylabel "top1"
set key top right
set grid
set logscale x
plot "sweep_top1.dat" index 0 using 1:2:3:4 with yerrorlines lw 2 title "width 128", "sweep_top1.dat" index 1 using 1:2:3:4 with yerrorlines lw 2 title "width 32", "sweep_top1.dat" index 2 using 1:2:3:4 with yerrorlines lw 2 title "width 64"
set terminal svg size 960,600 noenhanced dynamic
set output "sweep_top1.svg"
replot
