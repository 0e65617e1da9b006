# analysis/alpha0_sweep: validation top-1 accuracy (%) per epoch (one seed); circles: test
# Render with `gnuplot val_top1.gp` in this folder: writes val_top1.png, .svg and .pdf from val_top1.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "val_top1.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "analysis/alpha0_sweep: validation top-1 accuracy (%) per epoch (one seed); circles: test"
  set xlabel "epoch"
  set ylabel "validation top-1 accuracy (%)"
  set key outside bottom center horizontal Left reverse height 1.5
  set xtics 1
  set format x "%.0f"
  set xrange [0:3]
  plot "val_top1.dat" index 0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#1f77b4" dt 1 title "alpha0 = 0.1: width 32", \
       "val_top1.dat" index 1 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#ff7f0e" dt 1 title "alpha0 = 0.1: width 64", \
       "val_top1.dat" index 2 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#2ca02c" dt 1 title "alpha0 = 0.1: width 128", \
       "val_top1.dat" index 3 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#d62728" dt 1 title "alpha0 = 0.5: width 32", \
       "val_top1.dat" index 4 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#9467bd" dt 1 title "alpha0 = 0.5: width 64", \
       "val_top1.dat" index 5 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#8c564b" dt 1 title "alpha0 = 0.5: width 128", \
       "val_top1.dat" index 6 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#e377c2" dt 1 title "alpha0 = 1.0: width 32", \
       "val_top1.dat" index 7 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#7f7f7f" dt 1 title "alpha0 = 1.0: width 64", \
       "val_top1.dat" index 8 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#bcbd22" dt 1 title "alpha0 = 1.0: width 128", \
       "val_top1.dat" index 9 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#17becf" dt 1 title "alpha0 = 2.0: width 32", \
       "val_top1.dat" index 10 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#1f77b4" dt 2 title "alpha0 = 2.0: width 64", \
       "val_top1.dat" index 11 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#ff7f0e" dt 2 title "alpha0 = 2.0: width 128", \
       "val_top1.dat" index 12 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#2ca02c" dt 2 title "alpha0 = 4.0: width 32", \
       "val_top1.dat" index 13 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#d62728" dt 2 title "alpha0 = 4.0: width 64", \
       "val_top1.dat" index 14 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#9467bd" dt 2 title "alpha0 = 4.0: width 128", \
       "val_top1.dat" index 15 using 1:2 with points pt 6 ps 1.5 lc rgb "#1f77b4" title "test split, once after training (one point per seed)", \
       "val_top1.dat" index 16 using 1:2 with points pt 6 ps 1.5 lc rgb "#ff7f0e" title "", \
       "val_top1.dat" index 17 using 1:2 with points pt 6 ps 1.5 lc rgb "#2ca02c" title "", \
       "val_top1.dat" index 18 using 1:2 with points pt 6 ps 1.5 lc rgb "#d62728" title "", \
       "val_top1.dat" index 19 using 1:2 with points pt 6 ps 1.5 lc rgb "#9467bd" title "", \
       "val_top1.dat" index 20 using 1:2 with points pt 6 ps 1.5 lc rgb "#8c564b" title "", \
       "val_top1.dat" index 21 using 1:2 with points pt 6 ps 1.5 lc rgb "#e377c2" title "", \
       "val_top1.dat" index 22 using 1:2 with points pt 6 ps 1.5 lc rgb "#7f7f7f" title "", \
       "val_top1.dat" index 23 using 1:2 with points pt 6 ps 1.5 lc rgb "#bcbd22" title "", \
       "val_top1.dat" index 24 using 1:2 with points pt 6 ps 1.5 lc rgb "#17becf" title "", \
       "val_top1.dat" index 25 using 1:2 with points pt 6 ps 1.5 lc rgb "#1f77b4" title "", \
       "val_top1.dat" index 26 using 1:2 with points pt 6 ps 1.5 lc rgb "#ff7f0e" title "", \
       "val_top1.dat" index 27 using 1:2 with points pt 6 ps 1.5 lc rgb "#2ca02c" title "", \
       "val_top1.dat" index 28 using 1:2 with points pt 6 ps 1.5 lc rgb "#d62728" title "", \
       "val_top1.dat" index 29 using 1:2 with points pt 6 ps 1.5 lc rgb "#9467bd" title "", \
       10 with lines lw 1.5 lc rgb "#808080" dt 2 title "chance (10 classes)"
  set output
}
