# docs/trace.png: one instance's life as the OTLP receiver of
# test/t/270_otel_traces.pl recorded it (tmp_check/trace.dat: name, start,
# end in seconds from the first span, kind 1 INTERNAL / 3 CLIENT).
#   gnuplot -e "dat='trace.dat'" docs/trace.gp > docs/trace.png
set terminal pngcairo size 1100,420 font "sans,10" noenhanced
set title "One user's life as one trace (test/t/270_otel_traces.pl): transitions INTERNAL (orange, due -> fired), deliveries CLIENT (blue)"
set xlabel "hours since the invite (lifecycle clock; the test travels 25 hours)"
set yrange [-0.7:*] reverse
set ytics nomirror
set grid xtics
unset key
set style fill solid 0.8
rows = system(sprintf("wc -l < %s", dat)) + 0
set yrange [-0.7:rows - 0.3]
plot dat using (($2 + $3) / 7200.0):0:(($3 - $2) / 7200.0 + 0.15):(0.35):($4 == 3 ? 0x4477aa : 0xcc6633):ytic(1) \
	with boxxyerror lc rgb variable
