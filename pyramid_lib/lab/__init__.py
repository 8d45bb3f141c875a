"""What a lecturer and a room of students need around the notebooks (issue 28).

    check      `pyramid-ad check`: can this machine do the lab
    handout    `pyramid-ad export` / `import` of finished runs; `pyramid-ad lab`'s notebook copies
    fetch      `pyramid-ad fetch mvtec`: MVTec AD's archives, checked and extracted safely
    commands   those sub-commands, added to the command line by arguments.py
"""
