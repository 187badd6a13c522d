# The two plots of docs/BENCHMARKS.md, from the data files zwq-bench writes.
#   gnuplot -e "dir='bench/results'" bench/plots.gp
# Columns: see the header line of each .dat file. NaN marks a figure that was not measured.
if (!exists("dir")) dir = "bench/results"
set terminal pngcairo size 900,560 font "sans,10"
set grid
set key top left

set output dir."/gbps_vs_slice.png"
set title "Sum of a float32 array in /dev/shm: GB/s against slice size"
set logscale x 2
set xlabel "slice size (bytes)"
set ylabel "GB/s (10^9 bytes/s)"
set xtics ("4 KiB" 4096, "16 KiB" 16384, "64 KiB" 65536, "256 KiB" 262144, "1 MiB" 1048576, \
           "4 MiB" 4194304, "16 MiB" 16777216, "64 MiB" 67108864)
set xrange [3000:90000000]
set key noenhanced
set yrange [0:*]
plot dir."/gbps_vs_slice.dat" using 1:5 with lines dt 2 lw 2 lc rgb "#444444" title "BW2 (in-process, 2 threads)", \
     ""                        using 1:4 with lines dt 3 lw 2 lc rgb "#888888" title "BW1 (in-process, 1 thread)", \
     ""                        using 1:3 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "zwq, 2 workers", \
     ""                        using 1:2 with linespoints lw 2 pt 5 lc rgb "#6baed6" title "zwq, 1 worker", \
     ""                        using 1:6 with linespoints lw 1 pt 9 lc rgb "#d62728" title "seed pyzmq program, 2 processes", \
     ""                        using 1:7 with linespoints lw 1 pt 11 lc rgb "#ff7f0e" title "Pool.imap_unordered, 2 processes"

set output dir."/slices_vs_batch.png"
set title "No-op slices end to end: slices/s against batch size (slices per Tasks message)"
set logscale xy
set xlabel "most slices per Tasks message (zwq-broker --max-batch; worker credit 4096)"
set ylabel "slices per second"
set xtics auto
set xrange [0.7:6000]
set format x "%g"
set format y "%.0s%c"
set yrange [*:*]
set key bottom right
plot dir."/slices_vs_batch.dat" using 1:3 with lines dt 2 lw 2 lc rgb "#444444" title "raw PUSH/PULL ipc, 32-byte messages", \
     ""                         using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "zwq, 2 workers", \
     ""                         using 1:4 with lines dt 3 lw 2 lc rgb "#ff7f0e" title "Pool.map chunksize 1 (for scale)"
