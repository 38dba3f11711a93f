# A sim board firmware model with an A/B update path (docs/emulators.md,
# "Flash and updates"): `update` writes the image to the inactive slot in
# chunks, verifies it, then commits it by writing that slot's header last.
# A power cut at any moment leaves a bootable device.
version   = "2.0.0"
banner    = "Booting hilfarm-sim v${version}"
boot_time = "20ms"
prompt    = "sim> "

update {
  mode        = "ab"
  sector_size = 4096
  image_size  = 65536  # 16 chunks
  chunk_time  = "20ms" # the write window is ~340 ms
}

command "sensor temp" {
  response = "temp=23.5C"
}
