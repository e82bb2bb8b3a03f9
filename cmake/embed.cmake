# Turn a Lua file into a C array: cmake -DIN=file.lua -DOUT=out.c -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR nbytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT}.tmp "/* Generated from lua/quay/init.lua; do not edit. */\n#include <stddef.h>\n")
file(APPEND ${OUT}.tmp "extern const unsigned char quay__lua_init[];\nextern const size_t quay__lua_init_len;\n")
file(APPEND ${OUT}.tmp "const unsigned char quay__lua_init[] = {${body} 0};\n")
file(APPEND ${OUT}.tmp "const size_t quay__lua_init_len = ${nbytes};\n")
# Renamed at the end, so a reader never sees a half-written file.
file(RENAME ${OUT}.tmp ${OUT})
