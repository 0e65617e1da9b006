# mini/w2v2_speech: validation loss (bits per masked frame) per epoch (mean of 3 seeds, band: min to max)
# Render with `gnuplot val_loss_bits.gp` in this folder: writes val_loss_bits.png, .svg and .pdf from val_loss_bits.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "val_loss_bits.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "mini/w2v2_speech: validation loss (bits per masked frame) per epoch (mean of 3 seeds, band: min to max)"
  set xlabel "epoch"
  set ylabel "validation loss (bits per masked frame)"
  set key outside bottom center horizontal Left reverse height 1.5
  set xtics 3
  set format x "%.0f"
  set xrange [0:30]
  plot "val_loss_bits.dat" index 0 using 1:3:4 with filledcurves lc rgb "#1f77b4" fs transparent solid 0.15 noborder notitle, \
       "val_loss_bits.dat" index 0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#1f77b4" dt 1 title "wav2vec 2.0 small, 1 h synthesised speech: LN", \
       "val_loss_bits.dat" index 1 using 1:3:4 with filledcurves lc rgb "#ff7f0e" fs transparent solid 0.15 noborder notitle, \
       "val_loss_bits.dat" index 1 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#ff7f0e" dt 1 title "wav2vec 2.0 small, 1 h synthesised speech: DyT", \
       "val_loss_bits.dat" index 2 using 1:3:4 with filledcurves lc rgb "#2ca02c" fs transparent solid 0.15 noborder notitle, \
       "val_loss_bits.dat" index 2 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#2ca02c" dt 1 title "wav2vec 2.0 small, 1 h synthesised speech: DyT, feature alpha0 4", \
       5.672425341971495 with lines lw 1.5 lc rgb "#808080" dt 2 title "uniform guess (1 + 50 candidates)"
  set output
}
