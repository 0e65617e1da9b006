# mini/w2v2_speech: validation loss_bits: render with `gnuplot val_loss_bits.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "val_loss_bits.png"
set title "mini/w2v2_speech: validation loss_bits"
set xlabel "epoch"
set ylabel "loss_bits"
set key top right
set grid

plot "val_loss_bits.dat" index 0 using 1:3:4 with filledcurves lc 1 fs transparent solid 0.2 notitle, \
     "val_loss_bits.dat" index 0 using 1:2 with lines lw 2 lc 1 title "wav2vec 2.0 small, 1 h synthesised speech: LN (n=3)", \
     "val_loss_bits.dat" index 1 using 1:3:4 with filledcurves lc 2 fs transparent solid 0.2 notitle, \
     "val_loss_bits.dat" index 1 using 1:2 with lines lw 2 lc 2 title "wav2vec 2.0 small, 1 h synthesised speech: DyT (n=3)", \
     "val_loss_bits.dat" index 2 using 1:3:4 with filledcurves lc 3 fs transparent solid 0.2 notitle, \
     "val_loss_bits.dat" index 2 using 1:2 with lines lw 2 lc 3 title "wav2vec 2.0 small, 1 h synthesised speech: DyT, LN on features (n=3)"
set terminal svg size 960,600 noenhanced dynamic
set output "val_loss_bits.svg"
replot
