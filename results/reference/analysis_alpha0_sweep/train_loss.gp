# analysis/alpha0_sweep: training loss (one seed)
# Render with `gnuplot train_loss.gp` in this folder: writes train_loss.png, .svg and .pdf from train_loss.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "train_loss.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "analysis/alpha0_sweep: training loss (one seed)"
  set xlabel "training step (optimizer updates)"
  set ylabel "training loss (cross-entropy, label smoothing 0.1)"
  set key outside bottom center horizontal Left reverse height 1.5
  
  plot "train_loss.dat" index 0 using 1:2 with lines lw 2 lc rgb "#1f77b4" dt 1 title "alpha0 = 0.1: width 32", \
       "train_loss.dat" index 1 using 1:2 with lines lw 2 lc rgb "#ff7f0e" dt 1 title "alpha0 = 0.1: width 64", \
       "train_loss.dat" index 2 using 1:2 with lines lw 2 lc rgb "#2ca02c" dt 1 title "alpha0 = 0.1: width 128", \
       "train_loss.dat" index 3 using 1:2 with lines lw 2 lc rgb "#d62728" dt 1 title "alpha0 = 0.5: width 32", \
       "train_loss.dat" index 4 using 1:2 with lines lw 2 lc rgb "#9467bd" dt 1 title "alpha0 = 0.5: width 64", \
       "train_loss.dat" index 5 using 1:2 with lines lw 2 lc rgb "#8c564b" dt 1 title "alpha0 = 0.5: width 128", \
       "train_loss.dat" index 6 using 1:2 with lines lw 2 lc rgb "#e377c2" dt 1 title "alpha0 = 1.0: width 32", \
       "train_loss.dat" index 7 using 1:2 with lines lw 2 lc rgb "#7f7f7f" dt 1 title "alpha0 = 1.0: width 64", \
       "train_loss.dat" index 8 using 1:2 with lines lw 2 lc rgb "#bcbd22" dt 1 title "alpha0 = 1.0: width 128", \
       "train_loss.dat" index 9 using 1:2 with lines lw 2 lc rgb "#17becf" dt 1 title "alpha0 = 2.0: width 32", \
       "train_loss.dat" index 10 using 1:2 with lines lw 2 lc rgb "#1f77b4" dt 2 title "alpha0 = 2.0: width 64", \
       "train_loss.dat" index 11 using 1:2 with lines lw 2 lc rgb "#ff7f0e" dt 2 title "alpha0 = 2.0: width 128", \
       "train_loss.dat" index 12 using 1:2 with lines lw 2 lc rgb "#2ca02c" dt 2 title "alpha0 = 4.0: width 32", \
       "train_loss.dat" index 13 using 1:2 with lines lw 2 lc rgb "#d62728" dt 2 title "alpha0 = 4.0: width 64", \
       "train_loss.dat" index 14 using 1:2 with lines lw 2 lc rgb "#9467bd" dt 2 title "alpha0 = 4.0: width 128"
  set output
}
