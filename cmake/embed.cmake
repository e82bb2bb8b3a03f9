# Turn a Lua file into a C array:
#   cmake -DIN=file.lua -DOUT=out.c [-DNAME=quay__lua_init] -P embed.cmake
# defines `const unsigned char NAME[]` and `const size_t NAME_len`.
if(NOT NAME)
  set(NAME quay__lua_init)
endif()
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR nbytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
get_filename_component(_src ${IN} NAME)
file(WRITE ${OUT}.tmp "/* Generated from ${_src}; do not edit. */\n#include <stddef.h>\n")
file(APPEND ${OUT}.tmp "extern const unsigned char ${NAME}[];\nextern const size_t ${NAME}_len;\n")
file(APPEND ${OUT}.tmp "const unsigned char ${NAME}[] = {${body} 0};\n")
file(APPEND ${OUT}.tmp "const size_t ${NAME}_len = ${nbytes};\n")
# Renamed at the end, so a reader never sees a half-written file.
file(RENAME ${OUT}.tmp ${OUT})
