# mini/mae_fmnist [pretrain stage]: validation loss (MSE on masked patches) per epoch (mean of 2 seeds, band: min to max)
# Render with `gnuplot pretrain_val_loss.gp` in this folder: writes pretrain_val_loss.png, .svg and .pdf from pretrain_val_loss.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "pretrain_val_loss.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "mini/mae_fmnist [pretrain stage]: validation loss (MSE on\nmasked patches) per epoch (mean of 2 seeds, band: min to max)"
  set xlabel "epoch"
  set ylabel "validation loss (MSE on masked patches)"
  set key outside bottom center horizontal Left reverse height 1.5
  set xtics 1
  set format x "%.0f"
  set xrange [0:10]
  plot "pretrain_val_loss.dat" index 0 using 1:3:4 with filledcurves lc rgb "#1f77b4" fs transparent solid 0.15 noborder notitle, \
       "pretrain_val_loss.dat" index 0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#1f77b4" dt 1 title "MAE pretrain + fine-tune: LN", \
       "pretrain_val_loss.dat" index 1 using 1:3:4 with filledcurves lc rgb "#ff7f0e" fs transparent solid 0.15 noborder notitle, \
       "pretrain_val_loss.dat" index 1 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#ff7f0e" dt 1 title "MAE pretrain + fine-tune: DyT"
  set output
}
