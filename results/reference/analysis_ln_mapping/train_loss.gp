# analysis/ln_mapping: training loss (one seed)
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
  set title "analysis/ln_mapping: training loss (one seed)"
  set xlabel "training step (optimizer updates)"
  set ylabel "training loss (cross-entropy, label smoothing 0.1)"
  set key outside bottom center horizontal Left reverse height 1.5
  
  plot "train_loss.dat" index 0 using 1:2 with lines lw 2 lc rgb "#1f77b4" dt 1 title "ViT-64x4/p4, Fashion-MNIST, 5 ep: LN", \
       "train_loss.dat" index 1 using 1:2 with lines lw 2 lc rgb "#ff7f0e" dt 1 title "ViT-64x4/p4, Fashion-MNIST, 5 ep: DyT"
  set output
}
