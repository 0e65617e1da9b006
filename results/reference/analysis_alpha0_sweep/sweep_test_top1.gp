# analysis/alpha0_sweep: test top-1 accuracy (%), measured once after training (one seed; diverged runs absent)
# Render with `gnuplot sweep_test_top1.gp` in this folder: writes sweep_test_top1.png, .svg and .pdf from sweep_test_top1.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "sweep_test_top1.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "analysis/alpha0_sweep: test top-1 accuracy (%), measured once after training (one seed; diverged runs absent)"
  set xlabel "alpha0 (initial alpha of DyT) [model.norm.alpha_init]"
  set ylabel "test top-1 accuracy (%), measured once after training"
  set key outside bottom center horizontal Left reverse height 1.5
  set logscale x 2
  set format x "%g"
  plot "sweep_test_top1.dat" index 0 using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" dt 1 title "width 32", \
       "sweep_test_top1.dat" index 1 using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#ff7f0e" dt 1 title "width 64", \
       "sweep_test_top1.dat" index 2 using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#2ca02c" dt 1 title "width 128", \
       10 with lines lw 1.5 lc rgb "#808080" dt 2 title "chance (10 classes)"
  set output
}
